package users

import (
	"math/bits"
	"slices"

	"github.com/userkit/users/internal/trigram"
)

// The MemoryStore's search index: for every trigram (three consecutive bytes) of
// every user's SearchFields, the set of users whose fields contain it. A user
// whose fields contain a term of three bytes or more contains each of its
// trigrams, so the users in all of the term's sets are a superset of the
// matches, and each of them is then checked with Match.Matches. Terms of one or
// two bytes have no trigram: those searches walk the filter's list instead.
//
// A set is a sorted slice of slots while it is small, and a bitmap over all
// slots (one bit per user) once it holds more than two users in memDenseRatio:
// the trigrams every email shares ("com", "exa") cost an eighth of a byte per
// user instead of four. A bitmap goes back to a slice when it falls under one in
// memDenseRatio, the size at which both take the same memory.

// memDenseRatio is the ratio of slots to set members at which a bitmap and a
// slice of slots take the same memory.
const memDenseRatio = 32

// memPosting is the set of users whose search fields contain one trigram.
type memPosting struct {
	slots []uint32 // ascending, while the set is sparse
	bits  []uint64 // bit s set for slot s, once dense (slots is nil then)
	n     int
}

func (p *memPosting) has(s uint32) bool {
	if p.bits != nil {
		w := int(s >> 6)
		return w < len(p.bits) && p.bits[w]&(1<<(s&63)) != 0
	}
	_, found := slices.BinarySearch(p.slots, s)
	return found
}

func (p *memPosting) add(s uint32, slots uint32) {
	p.n++
	if p.bits != nil {
		w := int(s >> 6)
		if w < len(p.bits) {
			p.bits[w] |= 1 << (s & 63)
			return
		}
		if p.n*memDenseRatio >= int(slots) {
			p.bits = append(p.bits, make([]uint64, w+1-len(p.bits))...)
			p.bits[w] |= 1 << (s & 63)
			return
		}
		// The store has grown around a set that was dense when it was small.
		p.toSparse()
	}
	if n := len(p.slots); n == 0 || p.slots[n-1] < s {
		p.slots = append(p.slots, s)
	} else {
		i, _ := slices.BinarySearch(p.slots, s)
		p.slots = slices.Insert(p.slots, i, s)
	}
	if p.n > 64 && p.n*memDenseRatio > 2*int(slots) {
		p.bits = make([]uint64, (slots+63)/64)
		for _, s := range p.slots {
			p.bits[s>>6] |= 1 << (s & 63)
		}
		p.slots = nil
	}
}

// toSparse turns the bitmap of p back into a slice.
func (p *memPosting) toSparse() {
	slots := make([]uint32, 0, p.n+1)
	p.each(func(s uint32) { slots = append(slots, s) })
	p.slots, p.bits = slots, nil
}

func (p *memPosting) remove(s uint32) {
	p.n--
	if p.bits != nil {
		p.bits[s>>6] &^= 1 << (s & 63)
		if p.n*memDenseRatio < len(p.bits)*64 {
			p.toSparse()
		}
		return
	}
	i, _ := slices.BinarySearch(p.slots, s)
	p.slots = slices.Delete(p.slots, i, i+1)
}

// each calls fn with every slot of p, in ascending order.
func (p *memPosting) each(fn func(s uint32)) {
	if p.bits == nil {
		for _, s := range p.slots {
			fn(s)
		}
		return
	}
	for w, word := range p.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			fn(uint32(w<<6 | b))
			word &= word - 1
		}
	}
}

// userTrigrams returns the distinct trigrams of u's search fields, sorted: the
// ones the bbolt store's index keeps too (searchTrigrams).
func (m *MemoryStore) userTrigrams(u *memUser) []trigram.T {
	var v User
	m.view(u, &v)
	return searchTrigrams(&v)
}

// addTerms adds the user in slot to the search index. m.mu must be held for
// writing.
func (m *MemoryStore) addTerms(slot uint32, u *memUser) {
	for _, t := range m.userTrigrams(u) {
		m.addTerm(t, slot)
	}
}

func (m *MemoryStore) addTerm(t trigram.T, slot uint32) {
	p := m.terms[t]
	if p == nil {
		p = new(memPosting)
		m.terms[t] = p
	}
	p.add(slot, m.slots)
}

// removeTerms removes the user in slot from the search index. m.mu must be held
// for writing.
func (m *MemoryStore) removeTerms(slot uint32, u *memUser) {
	for _, t := range m.userTrigrams(u) {
		m.removeTerm(t, slot)
	}
}

func (m *MemoryStore) removeTerm(t trigram.T, slot uint32) {
	p := m.terms[t]
	p.remove(slot)
	if p.n == 0 {
		delete(m.terms, t)
	}
}

// retermUser moves the user in slot from the trigrams of old to those of u,
// touching only the ones that differ. m.mu must be held for writing.
func (m *MemoryStore) retermUser(slot uint32, old, u *memUser) {
	before, after := m.userTrigrams(old), m.userTrigrams(u)
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || i < len(before) && before[i] < after[j]:
			m.removeTerm(before[i], slot)
			i++
		case i == len(before) || after[j] < before[i]:
			m.addTerm(after[j], slot)
			j++
		default:
			i, j = i+1, j+1
		}
	}
}

// memScanRatio: a listing walks its filter's list rather than use the search
// index when the term's rarest trigram is in more than one in memScanRatio of
// the list's users (and in more than memScanMin users): the page then fills
// after a short walk.
const (
	memScanRatio = 8
	memScanMin   = 4096
)

// termCandidates returns the users whose search fields may contain term, a
// lower-case search term: every user whose fields hold each of its trigrams. ok
// is false when the index should not be used: the term is shorter than three
// bytes, or (unless count) so common that walking a list of listSize users in ID
// order finds a page sooner. A nil result with ok means nobody matches. m.mu must
// be held.
func (m *MemoryStore) termCandidates(term string, listSize int, count bool) (cands []uint32, ok bool) {
	if len(term) < 3 {
		return nil, false
	}
	var ps []*memPosting
	for _, g := range trigram.Append(nil, term) {
		p := m.terms[g]
		if p == nil {
			return nil, true
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *memPosting) int { return a.n - b.n })
	if !count && ps[0].n > memScanMin && ps[0].n*memScanRatio > listSize {
		return nil, false
	}
	cands = make([]uint32, 0, min(ps[0].n, 1024))
	// The candidates come in ascending order, so each sparse set is searched
	// from where the last search ended, with steps that double: a walk that
	// stays in the cache lines it has read, instead of a binary search over the
	// whole set for each candidate.
	from := make([]int, len(ps))
	ps[0].each(func(s uint32) {
		for i, p := range ps[1:] {
			if p.bits != nil {
				if !p.has(s) {
					return
				}
				continue
			}
			j := gallop(p.slots, from[i+1], s)
			from[i+1] = j
			if j == len(p.slots) || p.slots[j] != s {
				return
			}
		}
		cands = append(cands, s)
	})
	return cands, true
}

// gallop returns the index of the first element of the ascending slots, at or
// after from, that is not less than s: an exponential search from from, then a
// binary search in the last step.
func gallop(slots []uint32, from int, s uint32) int {
	lo, step := from, 1
	for lo+step < len(slots) && slots[lo+step] < s {
		lo += step
		step *= 2
	}
	hi := min(lo+step+1, len(slots))
	i, _ := slices.BinarySearch(slots[lo:hi], s)
	return lo + i
}

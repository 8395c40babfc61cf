package users

import (
	"slices"
	"sort"
	"strings"
)

// The MemoryStore's filter indexes. Every index is a memList: the slots of some
// users in ascending ID order, in chunks, with the number of users before each
// chunk, so that the position of an ID (a cursor) is found by binary search and
// the user at a position (an offset) by index arithmetic, never by walking. A
// memGroup holds the lists for all users and for each role, each status and each
// (role, status) pair; the store has one memGroup for everyone and one per
// account. That answers every combination of role, status and account:
//
//	Count      O(1) for a group with sub-lists (O(memGroupSplit) otherwise)
//	ListUsers  O(log n + Limit), whatever the Offset
//
// Search terms are answered by the trigram index (store_memory_search.go).

// memChunk is the most slots one chunk of a memList holds.
const memChunk = 1024

// memList is an ordered list of slots, by the IDs of their users.
type memList struct {
	chunks [][]uint32 // each non-empty and at most memChunk long
	starts []int      // starts[i] is the number of slots in chunks[:i]
	n      int
}

// search returns the position of the first slot whose ID is not less than id,
// and whether that slot's ID is id. m.mu must be held.
func (l *memList) search(m *MemoryStore, id string) (int, bool) {
	c := sort.Search(len(l.chunks), func(c int) bool {
		ch := l.chunks[c]
		return m.idOf(ch[len(ch)-1]) >= id
	})
	if c == len(l.chunks) {
		return l.n, false
	}
	ch := l.chunks[c]
	i := sort.Search(len(ch), func(i int) bool { return m.idOf(ch[i]) >= id })
	return l.starts[c] + i, m.idOf(ch[i]) == id
}

// after returns the position of the first slot whose ID is greater than id.
func (l *memList) after(m *MemoryStore, id string) int {
	i, found := l.search(m, id)
	if found {
		i++
	}
	return i
}

// locate returns the chunk holding position i (0 <= i < l.n) and i's index in it.
func (l *memList) locate(i int) (c, j int) {
	c = sort.Search(len(l.starts), func(c int) bool { return l.starts[c] > i }) - 1
	return c, i - l.starts[c]
}

// insert adds slot, whose ID must not be in l. m.mu must be held for writing.
func (l *memList) insert(m *MemoryStore, slot uint32) {
	id := m.idOf(slot)
	defer func() { l.n++ }()
	if l.n == 0 {
		l.chunks = append(l.chunks, []uint32{slot})
		l.starts = append(l.starts, 0)
		return
	}
	// New users mostly have the greatest ID: append without a search.
	last := len(l.chunks) - 1
	if ch := l.chunks[last]; m.idOf(ch[len(ch)-1]) < id {
		if len(ch) < memChunk {
			l.chunks[last] = append(ch, slot)
		} else {
			l.chunks = append(l.chunks, []uint32{slot})
			l.starts = append(l.starts, l.n)
		}
		return
	}
	c := sort.Search(len(l.chunks), func(c int) bool {
		ch := l.chunks[c]
		return m.idOf(ch[len(ch)-1]) > id
	})
	ch := l.chunks[c]
	i := sort.Search(len(ch), func(i int) bool { return m.idOf(ch[i]) > id })
	if len(ch) == memChunk { // split it in halves
		right := append(make([]uint32, 0, memChunk), ch[memChunk/2:]...)
		ch = ch[: memChunk/2 : memChunk]
		l.chunks = slices.Insert(l.chunks, c+1, right)
		l.starts = slices.Insert(l.starts, c+1, l.starts[c]+len(ch))
		l.chunks[c] = ch
		if i > len(ch) {
			c, i, ch = c+1, i-len(ch), right
		}
	}
	l.chunks[c] = slices.Insert(ch, i, slot)
	for k := c + 1; k < len(l.starts); k++ {
		l.starts[k]++
	}
}

// remove deletes slot, which must be in l. m.mu must be held for writing.
func (l *memList) remove(m *MemoryStore, slot uint32) {
	i, found := l.search(m, m.idOf(slot))
	if !found {
		panic("users: MemoryStore index is missing a user")
	}
	c, j := l.locate(i)
	ch := slices.Delete(l.chunks[c], j, j+1)
	if len(ch) == 0 {
		l.chunks = slices.Delete(l.chunks, c, c+1)
		l.starts = slices.Delete(l.starts, c, c+1)
	} else {
		l.chunks[c] = ch
		c++
	}
	for k := c; k < len(l.starts); k++ {
		l.starts[k]--
	}
	l.n--
}

// walk calls fn with the slots at positions from lo up to hi (exclusive), in
// order, or from hi-1 down to lo when backward, until fn returns false.
func (l *memList) walk(lo, hi int, backward bool, fn func(slot uint32) bool) {
	if lo >= hi {
		return
	}
	if !backward {
		c, j := l.locate(lo)
		for n := hi - lo; n > 0; c, j = c+1, 0 {
			for _, s := range l.chunks[c][j:min(len(l.chunks[c]), j+n)] {
				if !fn(s) {
					return
				}
				n--
			}
		}
		return
	}
	c, j := l.locate(hi - 1)
	for n := hi - lo; n > 0; c-- {
		ch := l.chunks[c]
		for ; j >= 0 && n > 0; j-- {
			if !fn(ch[j]) {
				return
			}
			n--
		}
		if c > 0 {
			j = len(l.chunks[c-1]) - 1
		}
	}
}

// memGroupSplit is the size at which an account's memGroup gets its role and
// status lists. Below it, a role or status question about the account reads its
// few users.
const memGroupSplit = 64

// memGroup indexes a set of users: all of them, and by role and status.
type memGroup struct {
	all      memList
	split    bool                // the maps below are kept
	byRole   map[uint16]*memList // by memUser.role
	byStatus map[uint16]*memList // by memUser.status
	byBoth   map[uint32]*memList // by role<<16 | status
}

func newSplitGroup() *memGroup {
	return &memGroup{
		split:    true,
		byRole:   make(map[uint16]*memList),
		byStatus: make(map[uint16]*memList),
		byBoth:   make(map[uint32]*memList),
	}
}

// sub returns the list of key in lists, made if missing.
func sub[K comparable](lists map[K]*memList, key K) *memList {
	l := lists[key]
	if l == nil {
		l = new(memList)
		lists[key] = l
	}
	return l
}

// add indexes the user in slot. m.mu must be held for writing.
func (g *memGroup) add(m *MemoryStore, slot uint32) {
	g.all.insert(m, slot)
	if g.split {
		g.addSubs(m, slot)
		return
	}
	if g.all.n >= memGroupSplit {
		g.split = true
		g.byRole = make(map[uint16]*memList)
		g.byStatus = make(map[uint16]*memList)
		g.byBoth = make(map[uint32]*memList)
		g.all.walk(0, g.all.n, false, func(s uint32) bool {
			g.addSubs(m, s)
			return true
		})
	}
}

func (g *memGroup) addSubs(m *MemoryStore, slot uint32) {
	u := m.user(slot)
	sub(g.byRole, u.role).insert(m, slot)
	sub(g.byStatus, u.status).insert(m, slot)
	sub(g.byBoth, uint32(u.role)<<16|uint32(u.status)).insert(m, slot)
}

// remove unindexes the user in slot, as it was when added. m.mu must be held
// for writing.
func (g *memGroup) remove(m *MemoryStore, slot uint32, role, status uint16) {
	g.all.remove(m, slot)
	if !g.split {
		return
	}
	removeSub(m, g.byRole, role, slot)
	removeSub(m, g.byStatus, status, slot)
	removeSub(m, g.byBoth, uint32(role)<<16|uint32(status), slot)
}

func removeSub[K comparable](m *MemoryStore, lists map[K]*memList, key K, slot uint32) {
	l := lists[key]
	l.remove(m, slot)
	if l.n == 0 {
		delete(lists, key)
	}
}

// pick returns the list of g's users with the role and status (either may be
// absent), or nil if there are none, and whether every user in it has them;
// if not, the caller checks each.
func (g *memGroup) pick(role, status uint16, hasRole, hasStatus bool) (*memList, bool) {
	var l *memList
	switch {
	case !g.split || !hasRole && !hasStatus:
		return &g.all, !hasRole && !hasStatus
	case hasRole && hasStatus:
		l = g.byBoth[uint32(role)<<16|uint32(status)]
	case hasRole:
		l = g.byRole[role]
	default:
		l = g.byStatus[status]
	}
	if l == nil {
		l = &memList{}
	}
	return l, true
}

// indexUser adds the user in slot to the filter, email, username, external ID and search
// indexes. m.mu must be held for writing.
func (m *MemoryStore) indexUser(slot uint32) {
	u := m.user(slot)
	m.byID[u.id()] = slot
	m.byEmail[u.email()] = slot
	if name := u.username(); name != "" {
		m.byUsername[name] = slot
	}
	if x := u.externalID(); x != "" {
		m.byExternal[x] = slot
	}
	m.everyone.add(m, slot)
	if a := u.accountID(); a != "" {
		g := m.accounts[a]
		if g == nil {
			g = &memGroup{}
			m.accounts[strings.Clone(a)] = g
		}
		g.add(m, slot)
	}
	m.addTerms(slot, u)
	m.activity.add(slot, u.time(memLastActiveAt))
}

// unindexUser removes the user in slot from every index. m.mu must be held for
// writing.
func (m *MemoryStore) unindexUser(slot uint32) {
	u := m.user(slot)
	m.activity.remove(slot, u.time(memLastActiveAt))
	m.removeTerms(slot, u)
	if a := u.accountID(); a != "" {
		g := m.accounts[a]
		g.remove(m, slot, u.role, u.status)
		if g.all.n == 0 {
			delete(m.accounts, a)
		}
	}
	m.everyone.remove(m, slot, u.role, u.status)
	if name := u.username(); name != "" {
		delete(m.byUsername, name)
	}
	if x := u.externalID(); x != "" {
		delete(m.byExternal, x)
	}
	delete(m.byEmail, u.email())
	delete(m.byID, u.id())
}

// memPlan is how a MemoryStore finds the users a Match selects.
type memPlan struct {
	none  bool     // nobody matches
	list  *memList // else walk this list,
	exact bool     // where every user matches (no check needed);
	cands []uint32 // or, when not nil, check only these users (in no order)
}

// plan decides how to find the users mt selects. When count is true, a search
// prefers the trigram index even for common terms, which a listing would rather
// find by walking in ID order until its page is full. m.mu must be held.
func (m *MemoryStore) plan(mt *Match, count bool) memPlan {
	key := func(index map[string]uint32, v string) memPlan {
		s, ok := index[v]
		if !ok {
			return memPlan{none: true}
		}
		return memPlan{cands: []uint32{s}}
	}
	switch {
	case mt.Email != "":
		return key(m.byEmail, mt.Email)
	case mt.Username != "":
		return key(m.byUsername, mt.Username)
	}
	g := m.everyone
	if mt.AccountID != "" {
		if g = m.accounts[mt.AccountID]; g == nil {
			return memPlan{none: true}
		}
	}
	role, hasRole := m.roleIndex[mt.Role]
	status, hasStatus := m.statusIndex[mt.Status]
	if mt.Role != "" && !hasRole || mt.Status != "" && !hasStatus {
		return memPlan{none: true}
	}
	l, exact := g.pick(role, status, mt.Role != "", mt.Status != "")
	if l.n == 0 {
		return memPlan{none: true}
	}
	active := !mt.ActiveSince.IsZero() || !mt.InactiveSince.IsZero()
	if mt.Search == "" {
		p := memPlan{list: l, exact: exact && !active}
		if !mt.ActiveSince.IsZero() {
			if cands, ok := m.activity.since(mt.ActiveSince, l.n); ok {
				p.cands = cands
			}
		}
		return p
	}
	p := memPlan{list: l}
	if cands, ok := m.termCandidates(mt.Search, l.n, count); ok {
		if cands == nil {
			return memPlan{none: true}
		}
		p.cands = cands
	}
	return p
}

// matches reports whether mt selects the user in slot: what mt.Matches says,
// without allocating when the user's names are ASCII. m.mu must be held.
func (m *MemoryStore) matches(slot uint32, mt *Match) bool {
	u := m.user(slot)
	var v User
	m.view(u, &v)
	if mt.Search == "" {
		return mt.Matches(&v)
	}
	if !isASCII(v.FirstName) || !isASCII(v.LastName) {
		return mt.Matches(&v) // ToLower of other scripts is Matches's business
	}
	rest := *mt
	rest.Search = ""
	if !rest.Matches(&v) {
		return false
	}
	// SearchFields for ASCII names: lower-casing is A-Z to a-z, byte for byte.
	first, last, term := v.FirstName, v.LastName, mt.Search
	return strings.Contains(v.Email, term) || strings.Contains(v.Username, term) ||
		containsLowerASCII(func(i int) byte { return first[i] }, len(first), term) ||
		containsLowerASCII(func(i int) byte { return last[i] }, len(last), term) ||
		first != "" && last != "" && containsLowerASCII(func(i int) byte {
			switch {
			case i < len(first):
				return first[i]
			case i == len(first):
				return ' '
			}
			return last[i-len(first)-1]
		}, len(first)+1+len(last), term)
}

// containsLowerASCII reports whether the lower-cased ASCII text of n bytes,
// byte i given by at(i), contains term.
func containsLowerASCII(at func(i int) byte, n int, term string) bool {
	for i := 0; i+len(term) <= n; i++ {
		j := 0
		for ; j < len(term); j++ {
			c := at(i + j)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != term[j] {
				break
			}
		}
		if j == len(term) {
			return true
		}
	}
	return false
}

// regroup moves the user in slot from the role and status lists of oldRole and
// oldStatus to those of its current role and status. m.mu must be held for
// writing.
func (g *memGroup) regroup(m *MemoryStore, slot uint32, oldRole, oldStatus uint16) {
	if !g.split {
		return
	}
	removeSub(m, g.byRole, oldRole, slot)
	removeSub(m, g.byStatus, oldStatus, slot)
	removeSub(m, g.byBoth, uint32(oldRole)<<16|uint32(oldStatus), slot)
	g.addSubs(m, slot)
}

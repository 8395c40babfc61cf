package users

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users/internal/trigram"
	"go.etcd.io/bbolt"
)

// The bbolt search index: for every byte trigram (three consecutive bytes) of
// the users' SearchFields, the sorted list of the users whose fields hold it. A
// term of three bytes or more can only be a substring of a field that holds all
// of the term's trigrams, so the users listed under every one of them are a
// superset of the users the term matches.
//
// Users are listed by a document number rather than by their ID: a number is
// given to each user when it is indexed (from a counter, so users created in ID
// order are numbered in ID order) and packs into a byte or two of a
// delta-encoded list, where a ULID would take sixteen.
//
// Layout, in nested buckets and one key under bucketSearch:
//
//	next   the next doc to give (8 bytes, big-endian)
//	docs   doc (8 bytes, big-endian)                    → packed ID (see packSearchID)
//	ids    packed ID                                    → doc (uvarint)
//	grams  trigram (3 bytes) + bound (8 bytes)          → chunk
//	tails  trigram (3 bytes)                            → chunk
//	segs   segment start (8 bytes)                      → nothing
//	pend   segment start (8 bytes) + 2 bytes            → group
//
// A chunk is a list of docs in increasing order, encoded as the first doc and
// then the difference from each doc to the next, all uvarints. A group holds a
// segment's lists for the trigrams that start with the two bytes in its key: for
// each, in increasing order of the trigram's third byte, that byte, the length of
// its chunk (uvarint) and the chunk.
//
// Each batch of new users (one indexSearchNew) becomes a pending segment: its
// docs, from its start to the next segment's start, listed by trigram in pend.
// Its keys follow every key before them, so writing it touches only the end of
// pend. Once there are searchPendingMax segments, they all merge into the main
// lists: then every trigram the batches share is written once for all of them,
// instead of once for each batch, which is what makes a large import cheap.
//
// A main list holds the docs below the first segment's start: its chunks in
// grams, in key order, of at most searchChunkMax bytes each, followed by its
// chunk in tails, if any. A grams chunk holds docs above the bound of the
// trigram's previous grams chunk and at most its own bound; the tail holds docs
// above every bound. A merge adds docs above all others, so it adds them to the
// tail, which, once full, moves to grams under the bound of its last doc: grams
// chunks are rewritten only when an older user changes, and the tails, which
// every merge touches, stay in a bucket of their own that is small.
//
// A trigram's list, which searchCandidates walks, is its main list followed by
// its list in each segment in order.
//
// The functions below work inside the caller's bbolt transaction and keep no
// state of their own, so they are as safe for concurrent use as bbolt's
// transactions are. They leave the index unchanged when they fail, provided the
// caller rolls the transaction back.
var bucketSearch = []byte("userkit.users.search")

var (
	searchDocs  = []byte("docs")
	searchIDs   = []byte("ids")
	searchGrams = []byte("grams")
	searchTails = []byte("tails")
	searchSegs  = []byte("segs")
	searchPend  = []byte("pend")
	searchNext  = []byte("next")
)

// searchPendingMax is how many pending segments there may be before they merge
// into the main lists. More makes a large import cheaper (each merge rewrites
// the tails of the trigrams it touches) and a search dearer (a lookup in every
// segment for each trigram that it needs). Segments stay pending until the next
// import merges them, so this bounds what a search costs after an import: at
// most searchPendingMax lookups more for each trigram, however many batches of
// ImportBatch the import wrote.
const searchPendingMax = 16

// searchChunkMax is the most bytes a chunk takes. A bigger chunk saves keys but
// costs more to decode on every search that seeks into it.
const searchChunkMax = 256

// searchIndex holds the search index's buckets in one transaction.
type searchIndex struct {
	root                                *bbolt.Bucket // bucketSearch
	docs, ids, grams, tails, segs, pend *bbolt.Bucket
}

// openSearch returns b's nested buckets, creating them if write is set. Without
// write, a missing bucket (an index nothing was ever added to) is nil.
func openSearch(b *bbolt.Bucket, write bool) (*searchIndex, error) {
	x := searchIndex{root: b}
	for _, n := range []struct {
		p    **bbolt.Bucket
		name []byte
		fill float64
	}{
		// docs grows at its end; ids mostly does (ULIDs made now).
		{&x.docs, searchDocs, 1}, {&x.ids, searchIDs, 0.9},
		{&x.grams, searchGrams, bbolt.DefaultFillPercent}, {&x.tails, searchTails, bbolt.DefaultFillPercent},
		// Segments are written at the end and merge away all at once.
		{&x.segs, searchSegs, 1}, {&x.pend, searchPend, 1},
	} {
		if !write {
			*n.p = b.Bucket(n.name)
			continue
		}
		c, err := b.CreateBucketIfNotExists(n.name)
		if err != nil {
			return nil, fmt.Errorf("users: search index: bucket %s: %w", n.name, err)
		}
		c.FillPercent = n.fill
		*n.p = c
	}
	return &x, nil
}

// packSearchID returns id as the search index keeps it: a ULID in canonical form
// as 'u' and its 16 bytes, any other ID as 's' and the ID itself.
func packSearchID(id string) []byte {
	if u, err := ulid.ParseStrict(id); err == nil && u.String() == id {
		return append([]byte{'u'}, u[:]...)
	}
	return append([]byte{'s'}, id...)
}

// unpackSearchID reverses packSearchID.
func unpackSearchID(v []byte) (string, error) {
	switch {
	case len(v) == 17 && v[0] == 'u':
		return ulid.ULID(v[1:]).String(), nil
	case len(v) > 1 && v[0] == 's':
		return string(v[1:]), nil
	}
	return "", fmt.Errorf("malformed packed ID %x", v)
}

func searchDocKey(doc uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), doc)
}

// chunkKey is the grams key of g's chunk with this bound.
func chunkKey(g trigram.T, bound uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 11), g.Key()...), bound)
}

// pendKey returns the key of the group that holds g's list in the segment at start.
func pendKey(start uint64, g trigram.T) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 10), start), byte(g>>16), byte(g>>8))
}

// pendGroupEach calls fn with each trigram's third byte and chunk in group v, in
// order, until fn returns false. It fails if v is malformed.
func pendGroupEach(v []byte, fn func(third byte, chunk []byte) bool) error {
	prev := -1
	for len(v) > 0 {
		n, k := binary.Uvarint(v[1:])
		if k <= 0 || n == 0 || n > uint64(len(v)-1-k) {
			return fmt.Errorf("malformed group")
		}
		if int(v[0]) <= prev {
			return fmt.Errorf("group's trigrams do not increase")
		}
		prev = int(v[0])
		if !fn(v[0], v[1+k:1+k+int(n)]) {
			return nil
		}
		v = v[1+k+int(n):]
	}
	return nil
}

// pendGroupGet returns the chunk of the trigram with third byte third in group v,
// nil if there is none.
func pendGroupGet(v []byte, third byte) (chunk []byte, err error) {
	err = pendGroupEach(v, func(t byte, c []byte) bool {
		if t == third {
			chunk = c
		}
		return t < third
	})
	return chunk, err
}

// pendGroupSet returns group v with the chunk of the trigram with third byte third
// replaced by chunk, or taken out if chunk is nil.
func pendGroupSet(v []byte, third byte, chunk []byte) ([]byte, error) {
	out := make([]byte, 0, len(v)+len(chunk)+4)
	done := false
	err := pendGroupEach(v, func(t byte, c []byte) bool {
		if !done && t >= third {
			if chunk != nil {
				out = appendPendEntry(out, third, chunk)
			}
			done = true
		}
		if t != third {
			out = appendPendEntry(out, t, c)
		}
		return true
	})
	if !done && chunk != nil {
		out = appendPendEntry(out, third, chunk)
	}
	return out, err
}

func appendPendEntry(dst []byte, third byte, chunk []byte) []byte {
	dst = binary.AppendUvarint(append(dst, third), uint64(len(chunk)))
	return append(dst, chunk...)
}

// encodeSearchChunk encodes docs, which increase, as a chunk.
func encodeSearchChunk(docs []uint64) []byte {
	out := make([]byte, 0, searchChunkSize(docs))
	var prev uint64
	for _, d := range docs {
		out = binary.AppendUvarint(out, d-prev)
		prev = d
	}
	return out
}

// searchChunkSize is the length of encodeSearchChunk(docs).
func searchChunkSize(docs []uint64) int {
	n := 0
	var prev uint64
	for _, d := range docs {
		n += searchUvarintLen(d - prev)
		prev = d
	}
	return n
}

func searchUvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// decodeSearchChunk appends the docs of chunk v to dst. It fails unless v is a
// well-formed chunk: not empty, its docs increasing, none of them zero.
func decodeSearchChunk(dst []uint64, v []byte) ([]uint64, error) {
	if len(v) == 0 {
		return dst, fmt.Errorf("empty chunk")
	}
	var prev uint64
	for len(v) > 0 {
		delta, n := binary.Uvarint(v)
		if n <= 0 {
			return dst, fmt.Errorf("chunk has a bad varint")
		}
		if delta == 0 || prev+delta < prev {
			return dst, fmt.Errorf("chunk's docs do not increase")
		}
		prev += delta
		dst = append(dst, prev)
		v = v[n:]
	}
	return dst, nil
}

// indexSearch updates the search index for one user: old is the user as it was
// (nil when created), new as it is now (nil when deleted). b is the bucketSearch
// bucket of a writable transaction. An update rewrites only the chunks of the
// trigrams that the change adds or removes; one that changes no search field
// returns at once. It returns an error wrapping
// ErrCorrupt if old is not in the index, and bbolt's errors.
func indexSearch(b *bbolt.Bucket, id string, old, new *User) error {
	if old == nil {
		if new == nil {
			return nil
		}
		return indexSearchNew(b, []string{id}, []*User{new})
	}
	if new != nil && new.Email == old.Email && new.Username == old.Username &&
		new.FirstName == old.FirstName && new.LastName == old.LastName {
		return nil // as on every login, which sets LastLoginAt only
	}
	removed, added := diffTrigrams(searchTrigrams(old), searchTrigrams(new))
	if new != nil && len(removed) == 0 && len(added) == 0 {
		return nil
	}
	x, err := openSearch(b, true)
	if err != nil {
		return err
	}
	pid := packSearchID(id)
	dv := x.ids.Get(pid)
	doc, n := binary.Uvarint(dv)
	if n <= 0 || n != len(dv) {
		return fmt.Errorf("%w: search index: user %s is not indexed", ErrCorrupt, id)
	}
	seg, pending := x.segmentOf(doc)
	for _, g := range removed {
		if err := x.change(g, doc, seg, pending, false); err != nil {
			return err
		}
	}
	for _, g := range added {
		if err := x.change(g, doc, seg, pending, true); err != nil {
			return err
		}
	}
	if new == nil {
		if err := x.ids.Delete(pid); err != nil {
			return err
		}
		return x.docs.Delete(searchDocKey(doc))
	}
	return nil
}

// segmentOf returns the start of the pending segment that holds doc, pending
// false if doc is in the main lists.
func (x *searchIndex) segmentOf(doc uint64) (start uint64, pending bool) {
	c := x.segs.Cursor()
	k, _ := c.Seek(searchDocKey(doc + 1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// change adds doc to g's list (add set) or takes it out: in the pending segment
// that starts at seg if pending, else in the main list.
func (x *searchIndex) change(g trigram.T, doc, seg uint64, pending, add bool) error {
	one := []uint64{doc}
	switch {
	case !pending && add:
		return x.insert(g, one)
	case !pending:
		return x.remove(g, one)
	}
	k := pendKey(seg, g)
	group := x.pend.Get(k)
	v, err := pendGroupGet(group, byte(g))
	var have []uint64
	if err == nil && v != nil {
		have, err = decodeSearchChunk(nil, v)
	}
	if err != nil {
		return fmt.Errorf("%w: search index: segment %d, trigram %v: %v", ErrCorrupt, seg, g, err)
	}
	docs := searchDifference(have, one)
	if add {
		docs = searchUnion(have, one)
	}
	var chunk []byte
	if len(docs) > 0 {
		chunk = encodeSearchChunk(docs)
	} else if have == nil {
		return nil
	}
	if group, err = pendGroupSet(group, byte(g), chunk); err != nil {
		return err
	}
	if len(group) == 0 {
		return x.pend.Delete(k)
	}
	return x.pend.Put(k, group)
}

// diffTrigrams returns the trigrams of old, then of new, that the other lacks.
// Both are increasing.
func diffTrigrams(old, new []trigram.T) (removed, added []trigram.T) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || i < len(old) && old[i] < new[j]:
			removed = append(removed, old[i])
			i++
		case i == len(old) || new[j] < old[i]:
			added = append(added, new[j])
			j++
		default:
			i++
			j++
		}
	}
	return removed, added
}

// indexSearchNew adds many newly created users at once (CreateUsers, rebuilds):
// ids[i] is the ID of us[i], and no ID may be in the index already. It numbers
// the users in ID order after every user already indexed and writes them as one
// pending segment, at the end of the pending bucket, which makes it much cheaper
// than calling indexSearch for each user; every searchPendingMax-th call also
// merges the pending segments into the main lists. b is the bucketSearch bucket
// of a writable transaction. It returns an error if the lengths differ or an ID
// is already indexed (nothing of the batch is then usable: the caller rolls
// back), and bbolt's errors.
func indexSearchNew(b *bbolt.Bucket, ids []string, us []*User) error {
	if len(ids) != len(us) {
		return fmt.Errorf("users: search index: %d IDs for %d users", len(ids), len(us))
	}
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > math.MaxUint32 {
		return fmt.Errorf("users: search index: %d users in one batch", len(ids))
	}
	x, err := openSearch(b, true)
	if err != nil {
		return err
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	if !slices.IsSortedFunc(order, func(i, j int) int { return strings.Compare(ids[i], ids[j]) }) {
		slices.SortFunc(order, func(i, j int) int { return strings.Compare(ids[i], ids[j]) })
	}
	next := uint64(1)
	if v := b.Get(searchNext); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("%w: search index: malformed next doc %x", ErrCorrupt, v)
		}
		next = binary.BigEndian.Uint64(v)
	}
	start := next
	// The users come in the order of their docs, so each list grows sorted.
	lists := map[trigram.T]int{} // where in docs a trigram's list is
	var docs [][]uint64
	for _, i := range order {
		pid := packSearchID(ids[i])
		if x.ids.Get(pid) != nil {
			return fmt.Errorf("users: search index: user %s is already indexed", ids[i])
		}
		doc := next
		next++
		if err := x.ids.Put(pid, binary.AppendUvarint(nil, doc)); err != nil {
			return err
		}
		if err := x.docs.Put(searchDocKey(doc), pid); err != nil {
			return err
		}
		if us[i] == nil {
			continue
		}
		for _, f := range trigram.Outer(SearchFields(us[i])) {
			for j := 0; j+3 <= len(f); j++ {
				g := trigram.At(f, j)
				k, ok := lists[g]
				if !ok {
					k = len(docs)
					lists[g] = k
					docs = append(docs, nil)
				}
				// A trigram in two fields of a user is listed once.
				if l := docs[k]; len(l) == 0 || l[len(l)-1] != doc {
					docs[k] = append(l, doc)
				}
			}
		}
	}
	if err := b.Put(searchNext, searchDocKey(next)); err != nil {
		return err
	}
	var group []byte
	grams := slices.Sorted(maps.Keys(lists))
	for i, g := range grams {
		group = appendPendEntry(group, byte(g), encodeSearchChunk(docs[lists[g]]))
		if i+1 < len(grams) && grams[i+1]>>8 == g>>8 {
			continue
		}
		if err := x.pend.Put(pendKey(start, g), group); err != nil {
			return err
		}
		group = nil
	}
	if err := x.segs.Put(searchDocKey(start), []byte{}); err != nil {
		return err
	}
	n := 0
	c := x.segs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	if n < searchPendingMax {
		return nil
	}
	return x.merge()
}

// merge moves every pending segment into the main lists.
func (x *searchIndex) merge() error {
	lists := map[trigram.T][]uint64{}
	c := x.pend.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 10 {
			return fmt.Errorf("%w: search index: malformed segment key %x", ErrCorrupt, k)
		}
		// Segments come in the order of their docs, so each list stays sorted.
		var err error
		if gerr := pendGroupEach(v, func(third byte, chunk []byte) bool {
			g := trigram.T(k[8])<<16 | trigram.T(k[9])<<8 | trigram.T(third)
			lists[g], err = decodeSearchChunk(lists[g], chunk)
			return err == nil
		}); gerr != nil || err != nil {
			return fmt.Errorf("%w: search index: segment key %x: %v", ErrCorrupt, k, errors.Join(gerr, err))
		}
	}
	for _, name := range [][]byte{searchPend, searchSegs} {
		if err := x.root.DeleteBucket(name); err != nil {
			return fmt.Errorf("users: search index: bucket %s: %w", name, err)
		}
	}
	y, err := openSearch(x.root, true)
	if err != nil {
		return err
	}
	*x = *y
	for _, g := range slices.Sorted(maps.Keys(lists)) {
		if err := x.insert(g, lists[g]); err != nil {
			return err
		}
	}
	return nil
}

// insert adds docs, which increase, to g's list.
func (x *searchIndex) insert(g trigram.T, docs []uint64) error {
	c := x.grams.Cursor()
	prefix := g.Key()
	for len(docs) > 0 {
		k, v := c.Seek(chunkKey(g, docs[0]))
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return x.insertTail(g, docs)
		}
		bound, err := searchChunkBound(k)
		if err != nil {
			return err
		}
		n := sort.Search(len(docs), func(i int) bool { return docs[i] > bound })
		have, err := decodeSearchChunk(nil, v)
		if err != nil {
			return fmt.Errorf("%w: search index: chunk %x: %v", ErrCorrupt, k, err)
		}
		if err := x.putChunks(g, bound, searchUnion(have, docs[:n])); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

// putChunks writes docs as g's grams chunk under bound, halving it into several
// chunks while it is too big. Halves, unlike full chunks, leave room for the
// next older user to change.
func (x *searchIndex) putChunks(g trigram.T, bound uint64, docs []uint64) error {
	if searchChunkSize(docs) <= searchChunkMax || len(docs) < 2 {
		return x.grams.Put(chunkKey(g, bound), encodeSearchChunk(docs))
	}
	half := len(docs) / 2
	if err := x.putChunks(g, docs[half-1], docs[:half]); err != nil {
		return err
	}
	return x.putChunks(g, bound, docs[half:])
}

// insertTail adds docs, which increase and are above every bound of g's grams
// chunks, to g's tail. A full tail moves to grams as full chunks.
func (x *searchIndex) insertTail(g trigram.T, docs []uint64) error {
	key := g.Key()
	var have []uint64
	if v := x.tails.Get(key); v != nil {
		var err error
		if have, err = decodeSearchChunk(nil, v); err != nil {
			return fmt.Errorf("%w: search index: tail %x: %v", ErrCorrupt, key, err)
		}
	}
	all := searchUnion(have, docs)
	start, size := 0, 0
	for i, d := range all {
		var prev uint64
		if i > start {
			prev = all[i-1]
		}
		if n := searchUvarintLen(d - prev); size+n <= searchChunkMax {
			size += n
			continue
		}
		if err := x.grams.Put(chunkKey(g, all[i-1]), encodeSearchChunk(all[start:i])); err != nil {
			return err
		}
		start, size = i, searchUvarintLen(d)
	}
	return x.tails.Put(key, encodeSearchChunk(all[start:]))
}

// remove takes docs, which increase, out of g's list. Docs it does not list are
// ignored.
func (x *searchIndex) remove(g trigram.T, docs []uint64) error {
	c := x.grams.Cursor()
	prefix := g.Key()
	for len(docs) > 0 {
		k, v := c.Seek(chunkKey(g, docs[0]))
		var bucket *bbolt.Bucket
		if k != nil && bytes.HasPrefix(k, prefix) {
			bucket = x.grams
		} else if k, v = prefix, x.tails.Get(prefix); v != nil {
			bucket = x.tails
		} else {
			return nil
		}
		n := len(docs)
		if bucket == x.grams {
			bound, err := searchChunkBound(k)
			if err != nil {
				return err
			}
			n = sort.Search(len(docs), func(i int) bool { return docs[i] > bound })
		}
		have, err := decodeSearchChunk(nil, v)
		if err != nil {
			return fmt.Errorf("%w: search index: chunk %x: %v", ErrCorrupt, k, err)
		}
		left := searchDifference(have, docs[:n])
		k = bytes.Clone(k)
		if len(left) == 0 {
			err = bucket.Delete(k)
		} else if len(left) < len(have) {
			err = bucket.Put(k, encodeSearchChunk(left))
		}
		if err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

func searchChunkBound(k []byte) (uint64, error) {
	if len(k) != 11 {
		return 0, fmt.Errorf("%w: search index: malformed chunk key %x", ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[3:]), nil
}

// searchUnion returns the docs in a or b, both increasing, in increasing order.
func searchUnion(a, b []uint64) []uint64 {
	if len(a) == 0 || a[len(a)-1] < b[0] {
		return append(a, b...)
	}
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// searchDifference returns the docs of a not in b, both increasing.
func searchDifference(a, b []uint64) []uint64 {
	out := a[:0:0]
	j := 0
	for _, d := range a {
		for j < len(b) && b[j] < d {
			j++
		}
		if j == len(b) || b[j] != d {
			out = append(out, d)
		}
	}
	return out
}

// searchCandidates returns, in ascending ID order, the IDs of every user whose
// SearchFields may contain term (a superset: the caller checks each with
// Match.Matches). indexed is false, and ids nil, when the index cannot narrow
// the term, which is when it is shorter than 3 bytes: the caller then scans. term
// is lower-case. b is the bucketSearch bucket; the cost is a few seeks for each
// of the term's trigrams and each candidate, however many users there are. It
// returns an error wrapping ErrCorrupt for a malformed chunk.
func searchCandidates(b *bbolt.Bucket, term string) (ids []string, indexed bool, err error) {
	if len(term) < 3 {
		return nil, false, nil
	}
	x, err := openSearch(b, false)
	if err != nil {
		return nil, false, err
	}
	if x.docs == nil {
		return nil, true, nil // nothing was ever indexed
	}
	grams := trigram.Append(nil, term)
	slices.Sort(grams)
	grams = slices.Compact(grams)
	its := make([]*trigramIter, len(grams))
	segs, err := x.segments()
	if err != nil {
		return nil, false, err
	}
	for i, g := range grams {
		its[i] = newTrigramIter(x, g, segs)
	}
	docs, err := intersectSearch(its)
	if err != nil {
		return nil, false, err
	}
	ids = make([]string, 0, len(docs))
	for _, d := range docs {
		// A doc without an ID belongs to no user: leaving it out keeps the
		// superset. checkSearchIndex reports it.
		if v := x.docs.Get(searchDocKey(d)); v != nil {
			id, err := unpackSearchID(v)
			if err != nil {
				return nil, false, fmt.Errorf("%w: search index: doc %d: %v", ErrCorrupt, d, err)
			}
			ids = append(ids, id)
		}
	}
	// Docs follow IDs unless users were indexed out of ID order.
	if !slices.IsSorted(ids) {
		slices.Sort(ids)
	}
	return ids, true, nil
}

// intersectSearch returns the docs that are in every one of its lists, in increasing order.
// It leapfrogs: each list seeks to the highest doc any list is at, so that the
// work follows the shortest list, not the longest.
func intersectSearch(its []*trigramIter) ([]uint64, error) {
	var out []uint64
	target := uint64(0)
	for {
		agreed := 0
		for i := 0; agreed < len(its); i = (i + 1) % len(its) {
			d, ok, err := its[i].seek(target)
			if err != nil || !ok {
				return out, err
			}
			if d == target {
				agreed++
			} else {
				target, agreed = d, 1
			}
		}
		out = append(out, target)
		target++
	}
}

// segments returns the starts of the pending segments, in order.
func (x *searchIndex) segments() ([]uint64, error) {
	var starts []uint64
	if x.segs == nil {
		return nil, nil
	}
	c := x.segs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 8 {
			return nil, fmt.Errorf("%w: search index: malformed segment %x", ErrCorrupt, k)
		}
		starts = append(starts, binary.BigEndian.Uint64(k))
	}
	return starts, nil
}

// trigramIter walks one trigram's list.
type trigramIter struct {
	g      trigram.T
	prefix []byte
	c      *bbolt.Cursor // over grams, nil if there is no such bucket
	tails  *bbolt.Bucket // nil if there is no such bucket
	pend   *bbolt.Bucket // nil if there is no such bucket
	segs   []uint64      // the starts of the pending segments

	chunk  []uint64 // the chunk last decoded
	bound  uint64   // the highest doc it may hold
	pos    int      // where in it the last seek stopped
	loaded bool
	done   bool
}

func newTrigramIter(x *searchIndex, g trigram.T, segs []uint64) *trigramIter {
	it := &trigramIter{g: g, prefix: g.Key(), tails: x.tails, pend: x.pend, segs: segs}
	if x.grams != nil {
		it.c = x.grams.Cursor()
	}
	return it
}

// seek returns the first doc of the list at or above target, or ok false if
// there is none. Targets never decrease from one call to the next.
func (it *trigramIter) seek(target uint64) (doc uint64, ok bool, err error) {
	for !it.done {
		if it.loaded && target <= it.bound {
			rest := it.chunk[it.pos:]
			it.pos += sort.Search(len(rest), func(i int) bool { return rest[i] >= target })
			if it.pos < len(it.chunk) {
				return it.chunk[it.pos], true, nil
			}
			if it.bound == math.MaxUint64 {
				break
			}
			target = it.bound + 1
		}
		if err := it.load(target); err != nil {
			return 0, false, err
		}
	}
	it.done = true
	return 0, false, nil
}

// load decodes the first chunk of the list that may hold docs at or above
// target, if there is one.
func (it *trigramIter) load(target uint64) error {
	it.loaded = false
	v, err := it.find(target)
	if err != nil || v == nil {
		it.done = true
		return err
	}
	if it.chunk, err = decodeSearchChunk(it.chunk[:0], v); err != nil {
		return fmt.Errorf("%w: search index: trigram %v: %v", ErrCorrupt, it.g, err)
	}
	it.pos, it.loaded = 0, true
	return nil
}

// find returns the first chunk of the list that may hold docs at or above
// target, and sets it.bound to the highest doc that chunk may hold.
func (it *trigramIter) find(target uint64) ([]byte, error) {
	if len(it.segs) == 0 || target < it.segs[0] {
		var k, v []byte
		if it.c != nil {
			k, v = it.c.Seek(chunkKey(it.g, target))
		}
		if k != nil && bytes.HasPrefix(k, it.prefix) {
			var err error
			it.bound, err = searchChunkBound(k)
			return v, err
		}
		it.bound = math.MaxUint64
		if len(it.segs) > 0 {
			it.bound = it.segs[0] - 1
		}
		if v := searchGet(it.tails, it.prefix); v != nil {
			return v, nil
		}
		if len(it.segs) == 0 {
			return nil, nil
		}
		target = it.segs[0]
	}
	// The last segment that starts at or below target, then the ones after it.
	for i := sort.Search(len(it.segs), func(i int) bool { return it.segs[i] > target }) - 1; i < len(it.segs); i++ {
		v, err := pendGroupGet(searchGet(it.pend, pendKey(it.segs[i], it.g)), byte(it.g))
		if err != nil {
			return nil, fmt.Errorf("%w: search index: segment %d, trigram %v: %v", ErrCorrupt, it.segs[i], it.g, err)
		}
		if v != nil {
			it.bound = math.MaxUint64
			if i+1 < len(it.segs) {
				it.bound = it.segs[i+1] - 1
			}
			return v, nil
		}
	}
	return nil, nil
}

// checkSearchIndex reports (as error strings, empty if sound) where the search
// index disagrees with the users, which it reads with each(yield) giving every
// user: a user the index lacks or lists under a trigram it does not hold, a
// trigram missing from a user's list, a deleted user still listed, and malformed
// keys and chunks. It lists at most maxSearchProblems of them and then how many
// more there are. It calls each once, or twice when some trigram's list is
// wrong (to say which users it gets wrong), and returns each's error. b is the
// bucketSearch bucket; checkSearchIndex only reads it. It keeps a few words per
// trigram and per user in memory.
func checkSearchIndex(b *bbolt.Bucket, each func(yield func(id string, u *User) bool) error) ([]string, error) {
	var c searchChecker
	x, err := openSearch(b, false)
	if err != nil {
		return nil, err
	}
	// A bucket that is missing (nil) reads as empty, as in searchCandidates.

	// The users: each must have a doc that maps back to it. want sums up which
	// docs each trigram should list.
	want := map[trigram.T]*docSum{}
	var live []uint64
	err = each(func(id string, u *User) bool {
		pid := packSearchID(id)
		dv := searchGet(x.ids, pid)
		doc, n := binary.Uvarint(dv)
		if n <= 0 || n != len(dv) {
			c.add("user %s is not in the search index", id)
			return true
		}
		if v := searchGet(x.docs, searchDocKey(doc)); !bytes.Equal(v, pid) {
			c.add("user %s: search index doc %d maps to %x", id, doc, v)
		}
		live = append(live, doc)
		for _, g := range searchTrigrams(u) {
			s := want[g]
			if s == nil {
				s = &docSum{}
				want[g] = s
			}
			s.add(doc)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(live)
	isLive := func(doc uint64) bool { _, ok := slices.BinarySearch(live, doc); return ok }

	// The maps between IDs and docs: both ways, and only for users.
	searchForEach(x.ids, func(k, v []byte) {
		doc, n := binary.Uvarint(v)
		if n <= 0 || n != len(v) {
			c.add("search index: ID %x has a malformed doc %x", k, v)
		} else if !bytes.Equal(searchGet(x.docs, searchDocKey(doc)), k) {
			c.add("search index: ID %x maps to doc %d, which does not map back", k, doc)
		}
	})
	searchForEach(x.docs, func(k, v []byte) {
		if len(k) != 8 {
			c.add("search index: malformed doc key %x", k)
			return
		}
		doc := binary.BigEndian.Uint64(k)
		if id, err := unpackSearchID(v); err != nil {
			c.add("search index: doc %d: %v", doc, err)
		} else if !isLive(doc) {
			c.add("search index: doc %d belongs to user %s, who does not exist", doc, id)
		}
	})

	// The counter: above every doc given.
	next := uint64(1)
	if v := searchGet(x.root, searchNext); len(v) == 8 {
		next = binary.BigEndian.Uint64(v)
	} else if v != nil {
		c.add("search index: malformed next doc %x", v)
	}
	if x.docs != nil {
		if k, _ := x.docs.Cursor().Last(); len(k) == 8 && binary.BigEndian.Uint64(k) >= next {
			c.add("search index: doc %d was given, but the next doc is %d", binary.BigEndian.Uint64(k), next)
		}
	}

	// The lists: well-formed, and summing to what the users want.
	segs, err := x.segments()
	if err != nil {
		c.add("%v", err)
		segs = nil
	}
	mainEnd := uint64(math.MaxUint64) // the docs of the main lists are below it
	if len(segs) > 0 {
		mainEnd = segs[0]
	}
	got := map[trigram.T]*docSum{}
	bounds := map[trigram.T]uint64{} // the highest grams bound of each trigram
	var prev trigram.T
	var prevBound uint64
	first := true
	searchForEach(x.grams, func(k, v []byte) {
		if len(k) != 11 {
			c.add("search index: malformed chunk key %x", k)
			return
		}
		g := trigram.FromKey(k)
		bound := binary.BigEndian.Uint64(k[3:])
		if first || g != prev {
			prevBound = 0
		}
		first, prev = false, g
		docs, err := decodeSearchChunk(nil, v)
		switch {
		case err != nil:
			c.add("search index: trigram %v, chunk %d: %v", g, bound, err)
		case docs[0] <= prevBound || docs[len(docs)-1] > bound || docs[len(docs)-1] >= mainEnd:
			c.add("search index: trigram %v, chunk %d holds docs %d to %d, outside (%d, %d] or not below the first segment",
				g, bound, docs[0], docs[len(docs)-1], prevBound, bound)
		}
		prevBound, bounds[g] = bound, bound
		got[g] = got[g].addAll(docs)
	})
	searchForEach(x.tails, func(k, v []byte) {
		if len(k) != 3 {
			c.add("search index: malformed tail key %x", k)
			return
		}
		g := trigram.FromKey(k)
		docs, err := decodeSearchChunk(nil, v)
		switch {
		case err != nil:
			c.add("search index: trigram %v, tail: %v", g, err)
		case docs[0] <= bounds[g]:
			c.add("search index: trigram %v, tail starts at doc %d, not above chunk %d", g, docs[0], bounds[g])
		case docs[len(docs)-1] >= mainEnd:
			c.add("search index: trigram %v, tail ends at doc %d, not below the first segment", g, docs[len(docs)-1])
		}
		got[g] = got[g].addAll(docs)
	})
	searchForEach(x.pend, func(k, v []byte) {
		if len(k) != 10 {
			c.add("search index: malformed segment key %x", k)
			return
		}
		start := binary.BigEndian.Uint64(k)
		i, ok := slices.BinarySearch(segs, start)
		end := uint64(math.MaxUint64)
		if i+1 < len(segs) {
			end = segs[i+1]
		}
		if !ok {
			c.add("search index: trigrams %q in segment %d, which is not listed", k[8:], start)
		}
		err := pendGroupEach(v, func(third byte, chunk []byte) bool {
			g := trigram.T(k[8])<<16 | trigram.T(k[9])<<8 | trigram.T(third)
			docs, err := decodeSearchChunk(nil, chunk)
			switch {
			case err != nil:
				c.add("search index: trigram %v, segment %d: %v", g, start, err)
			case docs[0] < start || docs[len(docs)-1] >= end:
				c.add("search index: trigram %v, segment %d holds docs %d to %d, outside [%d, %d)",
					g, start, docs[0], docs[len(docs)-1], start, end)
			}
			got[g] = got[g].addAll(docs)
			return true
		})
		if err != nil {
			c.add("search index: trigrams %q, segment %d: %v", k[8:], start, err)
		}
	})

	// Where a list sums wrong, say which users it gets wrong.
	wrong := map[trigram.T]bool{}
	for g, s := range want {
		if *s != *got[g].orZero() {
			wrong[g] = true
		}
	}
	for g, s := range got {
		if *s != *want[g].orZero() {
			wrong[g] = true
		}
	}
	if len(wrong) == 0 {
		return c.result(), nil
	}
	wantDocs := map[trigram.T][]uint64{}
	ids := map[uint64]string{}
	err = each(func(id string, u *User) bool {
		doc, n := binary.Uvarint(searchGet(x.ids, packSearchID(id)))
		if n <= 0 {
			return true
		}
		for _, g := range searchTrigrams(u) {
			if wrong[g] {
				wantDocs[g] = append(wantDocs[g], doc)
				ids[doc] = id
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	grams := slices.Sorted(maps.Keys(wrong))
	for _, g := range grams {
		var gotDocs []uint64
		it := newTrigramIter(x, g, segs)
		for target := uint64(0); ; target++ {
			d, ok, err := it.seek(target)
			if err != nil || !ok {
				break // a malformed chunk is reported above
			}
			gotDocs, target = append(gotDocs, d), d
		}
		w := wantDocs[g]
		slices.Sort(w)
		for _, d := range searchDifference(w, gotDocs) {
			c.add("search index: user %s is missing under trigram %v", ids[d], g)
		}
		for _, d := range searchDifference(gotDocs, w) {
			if id, ok := ids[d]; ok || isLive(d) {
				if !ok {
					id, _ = unpackSearchID(searchGet(x.docs, searchDocKey(d)))
				}
				c.add("search index: trigram %v lists user %s, whose fields do not hold it", g, id)
			} else {
				c.add("search index: trigram %v lists doc %d, which is no user's", g, d)
			}
		}
	}
	return c.result(), nil
}

// docSum sums up a set of docs: equal sets have equal sums, and different sets
// almost surely do not.
type docSum struct {
	n, sum uint64
}

func (s *docSum) add(doc uint64) {
	// splitmix64's finaliser spreads the docs over all 64 bits.
	z := doc + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	s.n++
	s.sum += z ^ z>>31
}

func (s *docSum) addAll(docs []uint64) *docSum {
	if s == nil {
		s = &docSum{}
	}
	for _, d := range docs {
		s.add(d)
	}
	return s
}

func (s *docSum) orZero() *docSum {
	if s == nil {
		return &docSum{}
	}
	return s
}

// searchGet is b.Get, nil for a nil b.
func searchGet(b *bbolt.Bucket, k []byte) []byte {
	if b == nil {
		return nil
	}
	return b.Get(k)
}

// searchForEach calls fn for each key and value of b, if b is not nil.
func searchForEach(b *bbolt.Bucket, fn func(k, v []byte)) {
	if b == nil {
		return
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		fn(k, v)
	}
}

// maxSearchProblems bounds how many problems checkSearchIndex lists.
const maxSearchProblems = 100

// searchChecker collects checkSearchIndex's problems.
type searchChecker struct {
	problems []string
	n        int
}

func (c *searchChecker) add(format string, args ...any) {
	c.n++
	if len(c.problems) < maxSearchProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

func (c *searchChecker) result() []string {
	if c.n > len(c.problems) {
		return append(c.problems, fmt.Sprintf("and %d more search index problems", c.n-len(c.problems)))
	}
	return c.problems
}

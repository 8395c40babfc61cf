package users

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// The filter indexes and counters.
//
// Every user has one entry in users.filter, and one in users.filter.account when
// it has an account:
//
//	users.filter          lp(role) + lp(status) + user ID → timeKey(LastActiveAt)
//	users.filter.account  lp(account) + lp(role) + lp(status) + user ID → timeKey(LastActiveAt)
//
// so the users of one (role, status) pair, or one (account, role, status)
// triple, are one key range in ID order. The entries' values carry the user's
// LastActiveAt, so that Match.ActiveSince and InactiveSince are decided on the
// index alone: a listing by activity walks the ranges (all of them, without a
// role, status or account) and skips the users it does not select without
// reading their records. users.count counts the users of each
// such range, under the range's key prefix after a tag byte:
//
//	countTotal                          → all users
//	countPair + lp(role) + lp(status)   → users with that role and status
//	countAccount + lp(account) + lp(role) + lp(status)
//
// A filter on any combination of role, status and account selects a few of
// these ranges: the counters under the filter's prefix name them (a role has a
// range per status in use, an account one per role and status in use), and
// their counts add up to CountUsers. ListUsers merges the ranges' cursors by ID,
// forwards or backwards: a page costs a seek per range and a step per user, and
// an offset is skipped on keys alone. The number of ranges is bounded by the
// roles and statuses in use, not by the number of users. Entries and counters
// change in the transaction that changes the user; two index entries and two or
// three counters per user keep the file and the writes small.
const (
	countTotal = iota
	countPair
	countAccount
)

// totalKey is the counter of all users in users.count.
var totalKey = []byte{countTotal}

// pairPrefix appends lp(role) + lp(status) of u to dst.
func pairPrefix(dst []byte, u *User) []byte {
	return lp(lp(dst, string(u.Role)), string(u.Status))
}

// accountPrefix appends lp(account) + lp(role) + lp(status) of u to dst, or
// returns nil if u is nil or has no account.
func accountPrefix(dst []byte, u *User) []byte {
	if u == nil || u.AccountID == "" {
		return nil
	}
	return pairPrefix(lp(dst, u.AccountID), u)
}

// indexFilters moves user id from old's filter entries and counters to new's:
// old is nil for a created user, new is nil for a deleted one. When only
// LastActiveAt changed it rewrites the entries' values.
func (b *boltTx) indexFilters(id string, old, new *User) error {
	if old != nil && new != nil && old.Role == new.Role && old.Status == new.Status && old.AccountID == new.AccountID {
		if old.LastActiveAt.Equal(new.LastActiveAt) {
			return nil
		}
		return b.touchFilters(id, new)
	}
	for _, x := range []struct {
		bucket *bbolt.Bucket
		tag    byte
		prefix func(dst []byte, u *User) []byte
	}{
		{b.filter, countPair, func(dst []byte, u *User) []byte {
			if u == nil {
				return nil
			}
			return pairPrefix(dst, u)
		}},
		{b.filterAcct, countAccount, accountPrefix},
	} {
		op, np := x.prefix(make([]byte, 1, 64), old), x.prefix(make([]byte, 1, 64), new)
		if bytes.Equal(op, np) {
			if np != nil && !old.LastActiveAt.Equal(new.LastActiveAt) {
				if err := x.bucket.Put(append(np[1:], id...), timeKey(new.LastActiveAt)); err != nil {
					return err
				}
			}
			continue
		}
		// op and np start with one spare byte: the counter's tag.
		if op != nil {
			op[0] = x.tag
			if err := x.bucket.Delete(append(op[1:], id...)); err != nil {
				return err
			}
			b.addCount(op, -1)
		}
		if np != nil {
			np[0] = x.tag
			if err := x.bucket.Put(append(np[1:], id...), timeKey(new.LastActiveAt)); err != nil {
				return err
			}
			b.addCount(np, 1)
		}
	}
	switch {
	case old == nil && new != nil:
		b.addCount(totalKey, 1)
	case old != nil && new == nil:
		b.addCount(totalKey, -1)
	}
	return nil
}

// touchFilters writes u's LastActiveAt into its filter index entries, which
// exist already.
func (b *boltTx) touchFilters(id string, u *User) error {
	v := timeKey(u.LastActiveAt)
	if err := b.filter.Put(append(pairPrefix(nil, u), id...), v); err != nil {
		return err
	}
	if p := accountPrefix(nil, u); p != nil {
		return b.filterAcct.Put(append(p, id...), v)
	}
	return nil
}

// activityFilter returns the test of a filter index entry's value that m's
// ActiveSince and InactiveSince make, or nil if m sets neither.
func activityFilter(m *Match) func(v []byte) bool {
	if m.ActiveSince.IsZero() && m.InactiveSince.IsZero() {
		return nil
	}
	var since, until []byte
	if !m.ActiveSince.IsZero() {
		since = timeKey(m.ActiveSince)
	}
	if !m.InactiveSince.IsZero() {
		until = timeKey(m.InactiveSince)
	}
	return func(v []byte) bool {
		return (since == nil || bytes.Compare(v, since) >= 0) && (until == nil || bytes.Compare(v, until) < 0)
	}
}

// addCount adds d to the counter under key, when the transaction commits (see
// flushCounts).
func (b *boltTx) addCount(key []byte, d int64) {
	if b.counts == nil {
		b.counts = map[string]int64{}
	}
	b.counts[string(key)] += d
}

// flushCounts writes the counter changes of the transaction, deleting a counter
// that reaches zero. Every write transaction calls it before it commits.
func (b *boltTx) flushCounts() error {
	for k, d := range b.counts {
		if d == 0 {
			continue
		}
		key := []byte(k)
		n := int64(0)
		if v := b.count.Get(key); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: counter %x is %d bytes long", ErrCorrupt, key, len(v))
			}
			n = int64(binary.BigEndian.Uint64(v))
		}
		n += d
		var err error
		switch {
		case n < 0:
			err = fmt.Errorf("%w: counter %x would go below zero", ErrCorrupt, key)
		case n == 0:
			err = b.count.Delete(key)
		default:
			err = b.count.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
		}
		if err != nil {
			return err
		}
	}
	clear(b.counts)
	return nil
}

// getCount reads the counter under key; a missing counter is zero.
func (b *boltTx) getCount(key []byte) (int, error) {
	v := b.count.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: counter %x is %d bytes long", ErrCorrupt, key, len(v))
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

// filterRanges returns the filter index bucket and the key prefixes of the
// ranges holding the users m's role, status and account select (at least one
// of them is set), with the number of users in each, read from the counters.
func (b *boltTx) filterRanges(m *Match) (*bbolt.Bucket, [][]byte, int, error) {
	bucket, seek := b.filter, []byte{countPair}
	if m.AccountID != "" {
		bucket, seek = b.filterAcct, lp([]byte{countAccount}, m.AccountID)
	}
	if m.Role != "" {
		seek = lp(seek, string(m.Role))
	}
	var prefixes [][]byte
	total := 0
	c := b.count.Cursor()
	for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, seek); k, v = c.Next() {
		rest := k[1:]
		var ok bool
		if m.AccountID != "" {
			if _, rest, ok = cutLP(rest); !ok {
				return nil, nil, 0, fmt.Errorf("%w: malformed counter key %x", ErrCorrupt, k)
			}
		}
		_, rest, ok1 := cutLP(rest)
		status, rest, ok2 := cutLP(rest)
		if !ok1 || !ok2 || len(rest) != 0 || len(v) != 8 {
			return nil, nil, 0, fmt.Errorf("%w: malformed counter %x", ErrCorrupt, k)
		}
		if m.Status != "" && status != string(m.Status) {
			continue
		}
		prefixes = append(prefixes, bytes.Clone(k[1:]))
		total += int(binary.BigEndian.Uint64(v))
	}
	return bucket, prefixes, total, nil
}

// rangeCursor walks one range of a filter index: the keys that start with
// prefix, whose rest is a user ID.
type rangeCursor struct {
	c      *bbolt.Cursor
	prefix []byte
	id     []byte // the current ID, nil when the range is done
	v      []byte // the current entry's value
}

func (r *rangeCursor) set(k, v []byte, inRange func(id []byte) bool) {
	r.id, r.v = nil, nil
	if k != nil && bytes.HasPrefix(k, r.prefix) && inRange(k[len(r.prefix):]) {
		r.id, r.v = k[len(r.prefix):], v
	}
}

// indexedCandidate answers a Match on Email or Username from its index: ok is
// true when it did, and u is the only user that can match (nil if none).
func (b *boltTx) indexedCandidate(f *Match) (u *UserRecord, ok bool, err error) {
	var id []byte
	switch {
	case f.Email != "":
		id = b.email.Get([]byte(f.Email))
	case f.Username != "":
		id = b.username.Get([]byte(f.Username))
	default:
		return nil, false, nil
	}
	if id == nil {
		return nil, true, nil
	}
	u, err = b.getUser(string(id))
	if err == ErrNotFound {
		err = fmt.Errorf("%w: index entry points at missing user %s", ErrCorrupt, id)
	}
	return u, true, err
}

// idWalk yields user IDs in ID order (or reverse order) from one source: the
// users bucket, a filter's key range, or a sorted list of search candidates.
// value is the user's record when the source has it at hand (the users bucket),
// else nil. The slices are valid only until the next call.
type idWalk struct {
	next func() (id, value []byte)
	// exact is true when every ID the walk yields belongs to a user the Match
	// selects, so that skipping one needs no record.
	exact bool
}

// walkUsers returns the walk over the users q selects, from q's cursor on, in
// the direction the cursor asks for, without Email and Username (which
// indexedCandidate answers).
func (b *boltTx) walkUsers(q *ListQuery) (idWalk, error) {
	lower, upper := q.After, q.Before
	backward := q.Before != ""
	inRange := func(id []byte) bool {
		return (lower == "" || string(id) > lower) && (upper == "" || string(id) < upper)
	}
	if q.Match.Search != "" {
		ids, indexed, err := searchCandidates(b.search, q.Match.Search)
		if err != nil {
			return idWalk{}, err
		}
		if indexed {
			i, step := 0, 1
			if backward {
				i, step = len(ids)-1, -1
			}
			return idWalk{next: func() ([]byte, []byte) {
				for ; i >= 0 && i < len(ids); i += step {
					if id := []byte(ids[i]); inRange(id) {
						i += step
						return id, nil
					}
				}
				return nil, nil
			}}, nil
		}
	}
	active := activityFilter(&q.Match)
	if q.Match.Role != "" || q.Match.Status != "" || q.Match.AccountID != "" || active != nil {
		bucket, prefixes, _, err := b.filterRanges(&q.Match)
		if err != nil {
			return idWalk{}, err
		}
		w := mergeRanges(bucket, prefixes, lower, upper, backward, inRange, active)
		w.exact = q.Match.Search == ""
		return w, nil
	}
	c := b.users.Cursor()
	var k, v []byte
	switch {
	case backward:
		if k, _ = c.Seek([]byte(upper)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	case lower != "":
		if k, v = c.Seek([]byte(lower)); string(k) == lower {
			k, v = c.Next()
		}
	default:
		k, v = c.First()
	}
	move := c.Next
	if backward {
		move = c.Prev
	}
	first := true
	w := idWalk{exact: q.Match.Search == ""}
	w.next = func() ([]byte, []byte) {
		if !first {
			k, v = move()
		}
		first = false
		if k == nil || !inRange(k) {
			k = nil
			return nil, nil
		}
		return k, v
	}
	return w, nil
}

// mergeRanges walks the IDs of several filter index ranges of bucket as one
// list in ID order (backward: reverse order), starting after lower (backward:
// before upper), leaving out entries whose value keep refuses (keep nil: none).
// The ranges hold distinct users, so no ID comes twice.
func mergeRanges(bucket *bbolt.Bucket, prefixes [][]byte, lower, upper string, backward bool, inRange, keep func([]byte) bool) idWalk {
	rs := make([]rangeCursor, len(prefixes))
	for i, p := range prefixes {
		r := &rs[i]
		r.c, r.prefix = bucket.Cursor(), p
		key := func(id string) []byte { return append(slices.Clip(p), id...) }
		var k, v []byte
		switch {
		case backward:
			if k, _ = r.c.Seek(key(upper)); k == nil {
				k, v = r.c.Last()
			} else {
				k, v = r.c.Prev()
			}
		case lower != "":
			if k, v = r.c.Seek(key(lower)); bytes.Equal(k, key(lower)) {
				k, v = r.c.Next()
			}
		default:
			k, v = r.c.Seek(p)
		}
		r.set(k, v, inRange)
	}
	want := -1 // forward: the smallest ID first
	if backward {
		want = 1
	}
	var last *rangeCursor // the range whose ID was returned last, to advance
	next := func() ([]byte, []byte) {
		for {
			if last != nil {
				var k, v []byte
				if backward {
					k, v = last.c.Prev()
				} else {
					k, v = last.c.Next()
				}
				last.set(k, v, inRange)
				last = nil
			}
			for i := range rs {
				if rs[i].id != nil && (last == nil || bytes.Compare(rs[i].id, last.id) == want) {
					last = &rs[i]
				}
			}
			if last == nil {
				return nil, nil
			}
			if keep == nil || keep(last.v) {
				return last.id, nil
			}
		}
	}
	return idWalk{next: next, exact: true}
}

// listUsers answers ListUsers; see Store. A Match with Email or Username is
// answered from its index; one with Search from the search index when it can
// narrow the term; one with role, status or account from that filter's index;
// any other from the users bucket. Offset is skipped on keys alone unless Search
// has to be checked against the records. If both After and Before are set (the
// contract rules it out) both bounds apply, with Before's meaning of Offset and
// Limit.
func (b *boltTx) listUsers(ctx context.Context, q *ListQuery) ([]*UserRecord, error) {
	out := []*UserRecord{}
	skip := q.Offset
	if u, ok, err := b.indexedCandidate(&q.Match); ok || err != nil {
		if err == nil && u != nil && skip == 0 && q.Match.Matches(&u.User) &&
			(q.After == "" || u.ID > q.After) && (q.Before == "" || u.ID < q.Before) {
			out = append(out, u)
		}
		return out, err
	}
	w, err := b.walkUsers(q)
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		id, v := w.next()
		if id == nil {
			break
		}
		if w.exact && skip > 0 {
			skip--
			continue
		}
		if v == nil {
			if v = b.users.Get(id); v == nil {
				return nil, fmt.Errorf("%w: index entry points at missing user %s", ErrCorrupt, id)
			}
		}
		u, err := decodeUser(id, v)
		if err != nil {
			return nil, err
		}
		if !q.Match.Matches(&u.User) {
			if w.exact {
				return nil, fmt.Errorf("%w: filter index entry of user %s disagrees with the record", ErrCorrupt, id)
			}
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if out = append(out, u); len(out) == q.Limit {
			break
		}
	}
	if q.Before != "" {
		slices.Reverse(out)
	}
	return out, nil
}

// countUsers answers CountUsers; see Store. Without Search or activity it reads
// counters (one, or one per range of the filter), or with Email or Username one
// user; with activity alone it walks the filter's index ranges, reading no
// record; with Search it reads the users the search index offers, or those of
// the filter's ranges when the index cannot narrow the term.
func (b *boltTx) countUsers(ctx context.Context, m *Match) (int, error) {
	if u, ok, err := b.indexedCandidate(m); ok || err != nil {
		if u != nil && m.Matches(&u.User) {
			return 1, err
		}
		return 0, err
	}
	if m.Search == "" && activityFilter(m) == nil {
		if m.Role == "" && m.Status == "" && m.AccountID == "" {
			return b.getCount(totalKey)
		}
		_, _, n, err := b.filterRanges(m)
		return n, err
	}
	w, err := b.walkUsers(&ListQuery{Match: *m})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := 1; ; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		id, v := w.next()
		if id == nil {
			return n, nil
		}
		if w.exact {
			n++ // the index alone decided (activity without Search)
			continue
		}
		if v == nil {
			if v = b.users.Get(id); v == nil {
				return 0, fmt.Errorf("%w: index entry points at missing user %s", ErrCorrupt, id)
			}
		}
		u, err := decodeUser(id, v)
		if err != nil {
			return 0, err
		}
		if m.Matches(&u.User) {
			n++
		}
	}
}

// searchFieldsChanged reports whether an update from old to new changed what
// SearchFields reads, so that an update that only moves LastLoginAt, say, leaves
// the search index alone.
func searchFieldsChanged(old, new *User) bool {
	return old.Email != new.Email || old.Username != new.Username ||
		old.FirstName != new.FirstName || old.LastName != new.LastName
}

package users

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// The filter indexes, the activity index and the counters.
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
// index alone: a listing by activity can walk the ranges (all of them, without
// a role, status or account) and skip the users it does not select without
// reading their records.
//
// That walk costs a key step per user until the page is full, which is cheap
// when many users are selected (the dormant accounts) and dear when few are
// (those active in the last hour). So every user also has an entry in
//
//	users.active          timeKey(LastActiveAt) + user ID → 1
//
// where the users of a time range are one key range. A listing by activity
// runs both in step: each key the filter walk reads, it also collects one key
// of the time range from users.active. If the filter walk finds its page
// first, that is the answer; if the time range runs out first, its users,
// sorted by ID and checked against the rest of the Match, are the candidates
// from then on. So a page costs at most twice the cheaper of the two: about
// (Offset+Limit)/p key steps when a share p of the users is selected, or the
// number of users in the time range, whichever is less, and it never decodes
// a record of a user outside the time range.
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
		return b.touchFilters(id, old.LastActiveAt, new)
	}
	if old == nil || new == nil || !old.LastActiveAt.Equal(new.LastActiveAt) {
		if old != nil {
			if err := b.active.Delete(append(timeKey(old.LastActiveAt), id...)); err != nil {
				return err
			}
		}
		if new != nil {
			if err := b.active.Put(append(timeKey(new.LastActiveAt), id...), present); err != nil {
				return err
			}
		}
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

// touchFilters moves u's activity index entry from old's LastActiveAt to u's,
// and writes u's LastActiveAt into its filter index entries, which exist
// already.
func (b *boltTx) touchFilters(id string, old time.Time, u *User) error {
	if err := b.active.Delete(append(timeKey(old), id...)); err != nil {
		return err
	}
	if err := b.active.Put(append(timeKey(u.LastActiveAt), id...), present); err != nil {
		return err
	}
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

// activityRange collects, one key at a time, the IDs of the users whose
// LastActiveAt a Match's ActiveSince and InactiveSince select, from
// users.active.
type activityRange struct {
	c     *bbolt.Cursor
	k     []byte
	until []byte // exclusive upper bound on the time key, or nil
	ids   []string
	done  bool
	err   error
}

func (b *boltTx) newActivityRange(m *Match) *activityRange {
	r := &activityRange{c: b.active.Cursor()}
	if m.ActiveSince.IsZero() {
		r.k, _ = r.c.First()
	} else {
		r.k, _ = r.c.Seek(timeKey(m.ActiveSince))
	}
	if !m.InactiveSince.IsZero() {
		r.until = timeKey(m.InactiveSince)
	}
	return r
}

// step collects the next ID of the range, and reports whether the range is
// done (or malformed: then err is set).
func (r *activityRange) step() bool {
	switch {
	case r.done:
	case r.k == nil || (r.until != nil && bytes.Compare(r.k, r.until) >= 0):
		r.done = true
	case len(r.k) < timeKeyLen:
		r.done, r.err = true, fmt.Errorf("%w: malformed activity index key %x", ErrCorrupt, r.k)
	default:
		r.ids = append(r.ids, string(r.k[timeKeyLen:]))
		r.k, _ = r.c.Next()
	}
	return r.done
}

// The ways walkActivity may go; tests choose one to cover each.
const (
	activityBoth       = iota // the filter walk and the time range in step
	activityFilterWalk        // the filter walk only
	activityRangeFirst        // the time range, collected before the first page
)

// walkActivity returns the walk over the users q selects by activity (and
// role, status and account, but not Search), which runs the filter walk and
// the collection of the time range in step (see above). backward and inRange
// are walkUsers's.
func (b *boltTx) walkActivity(q *ListQuery, backward bool, inRange func([]byte) bool) (idWalk, error) {
	bucket, prefixes, _, err := b.filterRanges(&q.Match)
	if err != nil {
		return idWalk{}, err
	}
	active := activityFilter(&q.Match)
	col := b.newActivityRange(&q.Match)
	keep := func(v []byte) bool {
		col.step()
		return active(v)
	}
	switch b.activityPath {
	case activityFilterWalk:
		col.done, keep = false, active
	case activityRangeFirst:
		for !col.step() {
		}
	}
	fw := mergeRanges(bucket, prefixes, q.After, q.Before, backward, inRange, keep, func() bool { return col.done })
	var last []byte // the last ID the filter walk gave
	var cands []string
	switched := false
	// fromRange walks the collected users after last, checking each against
	// the Match on its record.
	fromRange := func() ([]byte, []byte, error) {
		for len(cands) > 0 {
			var id string
			if backward {
				id, cands = cands[len(cands)-1], cands[:len(cands)-1]
			} else {
				id, cands = cands[0], cands[1:]
			}
			v := b.users.Get([]byte(id))
			if v == nil {
				return nil, nil, fmt.Errorf("%w: activity index entry points at missing user %s", ErrCorrupt, id)
			}
			u, err := decodeUser([]byte(id), v)
			if err != nil {
				return nil, nil, err
			}
			if q.Match.Matches(&u.User) {
				return []byte(id), v, nil
			}
		}
		return nil, nil, nil
	}
	switchOver := func() {
		switched = true
		slices.Sort(col.ids)
		for _, id := range col.ids {
			after := last == nil || (!backward && id > string(last)) || (backward && id < string(last))
			if after && inRange([]byte(id)) {
				cands = append(cands, id)
			}
		}
	}
	w := idWalk{exact: true}
	w.next = func() ([]byte, []byte) {
		if !switched && col.done && col.err == nil {
			switchOver()
		}
		if switched {
			id, v, err := fromRange()
			if err != nil {
				col.err = err
				return nil, nil
			}
			return id, v
		}
		id, v := fw.next()
		if id == nil && col.done && col.err == nil {
			switchOver()
			id, v, err = fromRange()
			if err != nil {
				col.err = err
				return nil, nil
			}
			return id, v
		}
		if id != nil {
			last = append(last[:0], id...)
		}
		return id, v
	}
	w.err = func() error { return col.err }
	return w, nil
}

// countActivity counts the users m's ActiveSince and InactiveSince select (m
// selects by nothing else), from users.active: it counts the keys of the time
// range and, in step, those outside it, and answers from whichever count is
// done first (the total less the outside), so it reads about as many keys as
// the smaller side has: the few active users when most are dormant, or the
// reverse.
func (b *boltTx) countActivity(m *Match) (int, error) {
	total, err := b.getCount(totalKey)
	if err != nil {
		return 0, err
	}
	var lo, hi []byte
	if !m.ActiveSince.IsZero() {
		lo = timeKey(m.ActiveSince)
	}
	if !m.InactiveSince.IsZero() {
		hi = timeKey(m.InactiveSince)
	}
	if lo != nil && hi != nil && bytes.Compare(lo, hi) >= 0 {
		return 0, nil
	}
	// in walks [lo, hi); out walks [first, lo) and then [hi, last].
	in, out := b.active.Cursor(), b.active.Cursor()
	var ik, ok []byte
	if lo == nil {
		ik, _ = in.First()
	} else {
		ik, _ = in.Seek(lo)
	}
	inDone := func(k []byte) bool { return k == nil || (hi != nil && bytes.Compare(k, hi) >= 0) }
	ok, _ = out.First()
	if lo == nil { // the outside is only [hi, last]
		ok, _ = out.Seek(hi)
	}
	outNext := func() {
		if ok, _ = out.Next(); ok != nil && lo != nil && hi != nil && bytes.Compare(ok, lo) >= 0 && bytes.Compare(ok, hi) < 0 {
			ok, _ = out.Seek(hi) // past the range
		}
	}
	if ok != nil && lo != nil && bytes.Compare(ok, lo) >= 0 {
		if hi == nil {
			ok = nil
		} else if bytes.Compare(ok, hi) < 0 {
			ok, _ = out.Seek(hi)
		}
	}
	nIn, nOut := 0, 0
	for {
		if inDone(ik) {
			return nIn, nil
		}
		if ok == nil || (hi == nil && lo != nil && bytes.Compare(ok, lo) >= 0) {
			return total - nOut, nil
		}
		nIn++
		ik, _ = in.Next()
		nOut++
		outNext()
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
	// err, if not nil, returns the error that ended the walk early.
	err func() error
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
	// listWalk walks a sorted list of candidate IDs.
	listWalk := func(ids []string, exact bool) idWalk {
		i, step := 0, 1
		if backward {
			i, step = len(ids)-1, -1
		}
		return idWalk{exact: exact, next: func() ([]byte, []byte) {
			for ; i >= 0 && i < len(ids); i += step {
				if id := []byte(ids[i]); inRange(id) {
					i += step
					return id, nil
				}
			}
			return nil, nil
		}}
	}
	if q.Match.Search != "" {
		ids, indexed, err := searchCandidates(b.search, q.Match.Search)
		if err != nil {
			return idWalk{}, err
		}
		if indexed {
			return listWalk(ids, false), nil
		}
	}
	active := activityFilter(&q.Match)
	if active != nil && q.Match.Search == "" {
		return b.walkActivity(q, backward, inRange)
	}
	if q.Match.Role != "" || q.Match.Status != "" || q.Match.AccountID != "" || active != nil {
		bucket, prefixes, _, err := b.filterRanges(&q.Match)
		if err != nil {
			return idWalk{}, err
		}
		w := mergeRanges(bucket, prefixes, lower, upper, backward, inRange, active, nil)
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
// When stop (if not nil) reports true after keep refused an entry, the walk
// ends early, as if it were done.
// The ranges hold distinct users, so no ID comes twice.
func mergeRanges(bucket *bbolt.Bucket, prefixes [][]byte, lower, upper string, backward bool, inRange, keep func([]byte) bool, stop func() bool) idWalk {
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
			if stop != nil && stop() {
				return nil, nil
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
			if w.err != nil {
				if err := w.err(); err != nil {
					return nil, err
				}
			}
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
	if m.Search == "" && m.Role == "" && m.Status == "" && m.AccountID == "" && activityFilter(m) != nil {
		return b.countActivity(m)
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
			if w.err != nil {
				return n, w.err()
			}
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

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
// A filter is a combination of role, status and account, named by a mask of the
// fields it uses. Each user is indexed under every non-empty mask whose fields it
// has (an account only when AccountID is not empty): up to seven entries, in
// users.filter (masks without an account) or users.filter.account, keyed
//
//	mask (1 byte) + lp(role) if mask has filterRole + lp(status) if filterStatus
//	+ lp(account) if filterAccount + user ID
//
// so the users of one filter are one key range, in ID order: a page is a seek
// and limit steps, an offset is skipped by walking keys without reading records,
// and Before walks the range backwards. users.count holds, under each filter's
// prefix (the key without the user ID), how many users it has, and under
// totalKey how many users there are: CountUsers with any filter is one Get.
// Both are changed in the transaction that changes the user.
const (
	filterRole = 1 << iota
	filterStatus
	filterAccount

	filterMasks = 8 // masks 1 to 7
)

// filterBucket is the bucket of mask's filter index: users.filter.account for
// the masks with an account, users.filter for the others (see openBuckets for
// why they are apart).
func (b *boltTx) filterBucket(mask byte) *bbolt.Bucket {
	if mask&filterAccount != 0 {
		return b.filterAcct
	}
	return b.filter
}

// totalKey is the counter of all users in users.count.
var totalKey = []byte{0}

// filterPrefix appends to dst the key prefix of the users that have role,
// status and account, for the fields mask names.
func filterPrefix(dst []byte, mask byte, role Role, status Status, account string) []byte {
	dst = append(dst, mask)
	if mask&filterRole != 0 {
		dst = lp(dst, string(role))
	}
	if mask&filterStatus != 0 {
		dst = lp(dst, string(status))
	}
	if mask&filterAccount != 0 {
		dst = lp(dst, account)
	}
	return dst
}

// userFilterPrefix is the prefix under which u is indexed for mask, or nil if u
// has an empty value in one of mask's fields (or u is nil).
func userFilterPrefix(mask byte, u *User) []byte {
	if u == nil ||
		mask&filterRole != 0 && u.Role == "" ||
		mask&filterStatus != 0 && u.Status == "" ||
		mask&filterAccount != 0 && u.AccountID == "" {
		return nil
	}
	return filterPrefix(make([]byte, 0, 64), mask, u.Role, u.Status, u.AccountID)
}

// matchMask returns the mask of m's filter fields.
func matchMask(m *Match) byte {
	var mask byte
	if m.Role != "" {
		mask |= filterRole
	}
	if m.Status != "" {
		mask |= filterStatus
	}
	if m.AccountID != "" {
		mask |= filterAccount
	}
	return mask
}

// indexFilters moves user id from old's filter entries and counters to new's:
// old is nil for a created user, new is nil for a deleted one.
func (b *boltTx) indexFilters(id string, old, new *User) error {
	if old != nil && new != nil && old.Role == new.Role && old.Status == new.Status && old.AccountID == new.AccountID {
		return nil
	}
	for mask := byte(1); mask < filterMasks; mask++ {
		op, np := userFilterPrefix(mask, old), userFilterPrefix(mask, new)
		if bytes.Equal(op, np) {
			continue
		}
		if op != nil {
			if err := b.filterBucket(mask).Delete(append(op, id...)); err != nil {
				return err
			}
			if err := b.addCount(op, -1); err != nil {
				return err
			}
		}
		if np != nil {
			if err := b.filterBucket(mask).Put(append(np, id...), present); err != nil {
				return err
			}
			if err := b.addCount(np, 1); err != nil {
				return err
			}
		}
	}
	switch {
	case old == nil && new != nil:
		return b.addCount(totalKey, 1)
	case old != nil && new == nil:
		return b.addCount(totalKey, -1)
	}
	return nil
}

// addCount adds d to the counter under key, when the transaction commits (see
// flushCounts).
func (b *boltTx) addCount(key []byte, d int64) error {
	if b.counts == nil {
		b.counts = map[string]int64{}
	}
	b.counts[string(key)] += d
	return nil
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
	var prefix []byte
	var c *bbolt.Cursor
	if mask := matchMask(&q.Match); mask != 0 {
		prefix = filterPrefix(nil, mask, q.Match.Role, q.Match.Status, q.Match.AccountID)
		c = b.filterBucket(mask).Cursor()
	} else {
		c = b.users.Cursor()
	}
	key := func(id string) []byte { return append(slices.Clip(prefix), id...) }
	var k, v []byte
	switch {
	case backward:
		if k, _ = c.Seek(key(upper)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	case lower != "":
		if k, v = c.Seek(key(lower)); bytes.Equal(k, key(lower)) {
			k, v = c.Next()
		}
	case prefix == nil:
		k, v = c.First()
	default:
		k, v = c.Seek(prefix)
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
		if k == nil || !bytes.HasPrefix(k, prefix) || !inRange(k[len(prefix):]) {
			k = nil
			return nil, nil
		}
		if prefix != nil {
			return k[len(prefix):], nil
		}
		return k, v
	}
	return w, nil
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

// countUsers answers CountUsers; see Store. Without Search it reads one counter
// (or, with Email or Username, one user); with Search it reads the users the
// search index offers, or those of the filter's index when the index cannot
// narrow the term.
func (b *boltTx) countUsers(ctx context.Context, m *Match) (int, error) {
	if u, ok, err := b.indexedCandidate(m); ok || err != nil {
		if u != nil && m.Matches(&u.User) {
			return 1, err
		}
		return 0, err
	}
	if m.Search == "" {
		mask := matchMask(m)
		if mask == 0 {
			return b.getCount(totalKey)
		}
		return b.getCount(filterPrefix(nil, mask, m.Role, m.Status, m.AccountID))
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

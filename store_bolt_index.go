package users

import (
	"context"
	"fmt"
	"slices"
)

// ListUsers returns one page of users in ID order; see Store. A Match with Email
// or Username is answered from an index; any other filter reads the users in the
// range from the cursor until the page is full. If both After and Before are set
// (the contract rules it out) both bounds apply, with Before's meaning of Offset
// and Limit.
func (s *BoltStore) ListUsers(ctx context.Context, q ListQuery) ([]*UserRecord, error) {
	out := []*UserRecord{}
	if q.Limit <= 0 {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		return out, nil
	}
	err := s.view(ctx, "list users", func(b *boltTx) error {
		skip := q.Offset
		take := func(u *UserRecord) bool {
			if !q.Match.Matches(&u.User) {
				return false
			}
			if skip > 0 {
				skip--
				return false
			}
			out = append(out, u)
			return len(out) == q.Limit
		}
		if u, ok, err := b.indexedCandidate(q.Match); ok || err != nil {
			if err == nil && u != nil && (q.After == "" || u.ID > q.After) && (q.Before == "" || u.ID < q.Before) {
				take(u)
			}
			return err
		}
		c := b.users.Cursor()
		var k, v []byte
		next := c.Next
		switch {
		case q.Before != "":
			next = c.Prev
			if k, _ = c.Seek([]byte(q.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		case q.After != "":
			if k, v = c.Seek([]byte(q.After)); k != nil && string(k) == q.After {
				k, v = c.Next()
			}
		default:
			k, v = c.First()
		}
		// Both bounds apply if both cursors are set, which the contract rules out.
		inRange := func(k []byte) bool {
			return k != nil && (q.After == "" || string(k) > q.After) && (q.Before == "" || string(k) < q.Before)
		}
		for n := 1; inRange(k); k, v = next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			u, err := decodeUser(v)
			if err != nil {
				return err
			}
			if take(u) {
				break
			}
		}
		if q.Before != "" {
			slices.Reverse(out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// indexedCandidate answers a Match on Email or Username from its index: ok is
// true when it did, and u is the only user that can match (nil if none).
func (b *boltTx) indexedCandidate(f Match) (u *UserRecord, ok bool, err error) {
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

// CountUsers counts the users that match f; see Store. It reads every user unless
// f has Email or Username.
func (s *BoltStore) CountUsers(ctx context.Context, f Match) (int, error) {
	n := 0
	err := s.view(ctx, "count users", func(b *boltTx) error {
		if u, ok, err := b.indexedCandidate(f); ok || err != nil {
			if u != nil && f.Matches(&u.User) {
				n = 1
			}
			return err
		}
		i := 0
		return b.users.ForEach(func(_, v []byte) error {
			if i++; i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			u, err := decodeUser(v)
			if err != nil {
				return err
			}
			if f.Matches(&u.User) {
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

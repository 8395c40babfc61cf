package users

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

const maxCheckProblems = 100

// Check verifies the file: bbolt's own consistency check (Tx.Check) finds
// nothing, the schema version is this code's and no rebuild is unfinished, the
// bucket "userkit.users" holds nothing but its meta bucket (the buckets an
// older layout nested there are gone), every record decodes, and every index agrees with the records both ways: each email,
// username, filter, session, token and challenge index entry points at an
// existing record with that key, each record is indexed (a user's filter entries
// with its LastActiveAt, and its activity index entry), every counter holds the
// number of users it counts (and no other counter exists), the search index
// agrees with the users, every audit entry has exactly its subject, actor, type,
// time and irregular-ID index entries, and no session, token, MFA record or
// challenge belongs to a missing user (or, for a session or challenge, to another
// Generation of the user); every credential belongs to an existing user and
// agrees with its by-user index both ways. It returns nil, or an error matching
// ErrCorrupt that lists the first 100 problems.
//
// Check reads the whole file inside a write transaction, which it rolls back:
// writes wait until it is done, reads do not. It is safe for concurrent use.
func (s *BoltStore) Check(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	// Tx.Check is only safe alongside writers in a writable transaction.
	tx, err := s.db.Begin(true)
	if err != nil {
		return wrapBolt("check", err)
	}
	defer func() { _ = tx.Rollback() }()

	var c checker
	for err := range tx.Check() {
		c.add("bbolt: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.checkRoot(tx)
	if b, err := txBuckets(tx); err != nil {
		c.add("%v", err)
	} else if err := c.checkAll(ctx, b); err != nil {
		return err
	}
	return c.err()
}

// checkRoot checks the schema version, that no rebuild is unfinished, and that
// rootBucket holds its meta bucket alone: the buckets nested there up to
// version 9 are gone once a rebuild has moved their records to the top level.
func (c *checker) checkRoot(tx *bbolt.Tx) {
	meta, err := metaBucket(tx)
	if err != nil {
		c.add("%v", err)
		return
	}
	if v := meta.Get(keyVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != boltSchemaVersion {
		c.add("schema version is %x, want %d", v, boltSchemaVersion)
	}
	if m := meta.Get(keyRebuild); m != nil {
		c.add("a rebuild of the indexes is unfinished (marker %x)", m)
	}
	_ = tx.Bucket(rootBucket).ForEach(func(k, _ []byte) error {
		if !bytes.Equal(k, bucketMeta) {
			c.add("%s holds %q besides %s, left from the layout of version 9 or older", rootBucket, k, bucketMeta)
		}
		return nil
	})
}

type checker struct {
	problems []error
	n        int
}

func (c *checker) add(format string, args ...any) {
	c.n++
	if len(c.problems) < maxCheckProblems {
		c.problems = append(c.problems, fmt.Errorf(format, args...))
	}
}

func (c *checker) err() error {
	if c.n == 0 {
		return nil
	}
	if c.n > len(c.problems) {
		c.problems = append(c.problems, fmt.Errorf("and %d more problems", c.n-len(c.problems)))
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(c.problems...))
}

// checkAll checks the records and indexes. Its error is only ever ctx's.
func (c *checker) checkAll(ctx context.Context, b *boltTx) error {
	generation := map[string]int64{}
	counts := map[string]int{} // every counter's expected value, by key
	steps := []func(){
		func() {
			_ = b.users.ForEach(func(k, v []byte) error {
				u, err := decodeUser(k, v)
				if err != nil {
					c.add("user %q: %v", k, err)
					return nil
				}
				generation[string(k)] = u.Generation
				counts[string(totalKey)]++
				active := timeKey(u.LastActiveAt)
				if b.active.Get(append(bytes.Clone(active), k...)) == nil {
					c.add("user %s: not in the activity index", k)
				}
				p := pairPrefix([]byte{countPair}, &u.User)
				counts[string(p)]++
				if v := b.filter.Get(append(p[1:], k...)); v == nil {
					c.add("user %s: not in the filter index", k)
				} else if !bytes.Equal(v, active) {
					c.add("user %s: the filter index holds another LastActiveAt", k)
				}
				if p := accountPrefix([]byte{countAccount}, &u.User); p != nil {
					counts[string(p)]++
					if v := b.filterAcct.Get(append(p[1:], k...)); v == nil {
						c.add("user %s: not in the account filter index", k)
					} else if !bytes.Equal(v, active) {
						c.add("user %s: the account filter index holds another LastActiveAt", k)
					}
				}
				if u.Email != "" && string(b.email.Get([]byte(u.Email))) != string(k) {
					c.add("user %s: email %q is not indexed", k, u.Email)
				}
				if u.Username != "" && string(b.username.Get([]byte(u.Username))) != string(k) {
					c.add("user %s: username %q is not indexed", k, u.Username)
				}
				if u.ExternalID != "" && string(b.external.Get([]byte(u.ExternalID))) != string(k) {
					c.add("user %s: external ID %q is not indexed", k, u.ExternalID)
				}
				return nil
			})
		},
		func() {
			for _, x := range []struct {
				name  string
				idx   *bbolt.Bucket
				field func(*UserRecord) string
			}{
				{"email", b.email, func(u *UserRecord) string { return u.Email }},
				{"username", b.username, func(u *UserRecord) string { return u.Username }},
				{"external ID", b.external, func(u *UserRecord) string { return u.ExternalID }},
			} {
				_ = x.idx.ForEach(func(k, id []byte) error {
					u, err := b.getUser(string(id))
					switch {
					case err == ErrNotFound:
						c.add("%s index: %q points at missing user %q", x.name, k, id)
					case err != nil:
						// Reported with the users.
					case x.field(u) != string(k):
						c.add("%s index: %q points at user %s, whose %s is %q", x.name, k, id, x.name, x.field(u))
					}
					return nil
				})
			}
		},
		func() { c.checkFilters(b, counts) },
		func() {
			if n, want := b.active.Stats().KeyN, len(generation); n != want {
				c.add("activity index: %d entries, want one per user, %d", n, want)
			}
		},
		func() {
			problems, err := checkSearchIndex(b.search, func(yield func(id string, u *User) bool) error {
				cur := b.users.Cursor()
				for k, v := cur.First(); k != nil; k, v = cur.Next() {
					u, err := decodeUser(k, v)
					if err != nil {
						continue // reported with the users
					}
					if !yield(u.ID, &u.User) {
						return nil
					}
				}
				return nil
			})
			if err != nil {
				c.add("search index: %v", err)
			}
			for _, p := range problems {
				c.add("search index: %s", p)
			}
		},
		func() {
			_ = b.sessions.ForEach(func(k, v []byte) error {
				s, err := decodeSession(k, v)
				if err != nil {
					c.add("session %x: %v", k, err)
					return nil
				}
				if gen, ok := generation[s.UserID]; !ok {
					c.add("session %s: user %q is missing", s.ID, s.UserID)
				} else if gen != s.UserGeneration {
					c.add("session %s: created under generation %d of user %s, which is at %d", s.ID, s.UserGeneration, s.UserID, gen)
				}
				if !bytes.Equal(b.sessUser.Get(sessionUserKey(s.UserID, s.ID)), k) {
					c.add("session %s: not in the by-user index", s.ID)
				}
				if !bytes.Equal(b.sessID.Get([]byte(s.ID)), k) {
					c.add("session %s: not in the by-ID index", s.ID)
				}
				if b.sessExp.Get(expiryKey(s.ExpiresAt, k)) == nil {
					c.add("session %s: not in the expiry index", s.ID)
				}
				return nil
			})
		},
		func() {
			_ = b.sessUser.ForEach(func(k, hash []byte) error {
				userID, sessionID, ok := cutLP(k)
				s, err := b.getSession(hash)
				switch {
				case !ok:
					c.add("session by-user index: malformed key %x", k)
				case err == ErrNotFound:
					c.add("session by-user index: %x points at missing session %x", k, hash)
				case err != nil:
				case s.UserID != userID || s.ID != string(sessionID):
					c.add("session by-user index: (%q, %q) points at session %s of user %s", userID, sessionID, s.ID, s.UserID)
				}
				return nil
			})
			_ = b.sessID.ForEach(func(k, hash []byte) error {
				s, err := b.getSession(hash)
				switch {
				case err == ErrNotFound:
					c.add("session by-ID index: %q points at missing session %x", k, hash)
				case err != nil:
				case s.ID != string(k):
					c.add("session by-ID index: %q points at session %s", k, s.ID)
				}
				return nil
			})
			_ = b.sessExp.ForEach(func(k, _ []byte) error {
				if len(k) < timeKeyLen {
					c.add("session expiry index: malformed key %x", k)
					return nil
				}
				s, err := b.getSession(k[timeKeyLen:])
				switch {
				case err == ErrNotFound:
					c.add("session expiry index: %x points at a missing session", k)
				case err != nil:
				case !bytes.Equal(timeKey(s.ExpiresAt), k[:timeKeyLen]):
					c.add("session expiry index: %x has the wrong time for session %s", k, s.ID)
				}
				return nil
			})
		},
		func() {
			_ = b.tokens.ForEach(func(k, v []byte) error {
				t, err := decodeToken(k, v)
				if err != nil {
					c.add("token %x: %v", k, err)
					return nil
				}
				if _, ok := generation[t.UserID]; !ok {
					c.add("token %x: user %q is missing", k, t.UserID)
				}
				if b.tokUser.Get(tokenUserKey(t.UserID, t.Purpose, k)) == nil {
					c.add("token %x: not in the by-user index", k)
				}
				if b.tokExp.Get(expiryKey(t.ExpiresAt, k)) == nil {
					c.add("token %x: not in the expiry index", k)
				}
				return nil
			})
			_ = b.tokUser.ForEach(func(k, _ []byte) error {
				userID, rest, ok1 := cutLP(k)
				purpose, hash, ok2 := cutLP(rest)
				if !ok1 || !ok2 {
					c.add("token by-user index: malformed key %x", k)
					return nil
				}
				t, err := b.getToken(hash)
				switch {
				case err == ErrNotFound:
					c.add("token by-user index: %x points at a missing token", k)
				case err != nil:
				case t.UserID != userID || string(t.Purpose) != purpose:
					c.add("token by-user index: (%q, %q) points at token %x of (%q, %q)", userID, purpose, hash, t.UserID, t.Purpose)
				}
				return nil
			})
			_ = b.tokExp.ForEach(func(k, _ []byte) error {
				if len(k) < timeKeyLen {
					c.add("token expiry index: malformed key %x", k)
					return nil
				}
				t, err := b.getToken(k[timeKeyLen:])
				switch {
				case err == ErrNotFound:
					c.add("token expiry index: %x points at a missing token", k)
				case err != nil:
				case !bytes.Equal(timeKey(t.ExpiresAt), k[:timeKeyLen]):
					c.add("token expiry index: %x has the wrong time", k)
				}
				return nil
			})
		},
		func() {
			_ = b.logins.ForEach(func(k, v []byte) error {
				a, err := decodeAttempts(v)
				if err != nil {
					c.add("login attempts %q: %v", k, err)
					return nil
				}
				if b.loginExp.Get(expiryKey(a.ExpiresAt, k)) == nil {
					c.add("login attempts %q: not in the expiry index", k)
				}
				return nil
			})
			_ = b.loginExp.ForEach(func(k, _ []byte) error {
				if len(k) < timeKeyLen {
					c.add("login attempts expiry index: malformed key %x", k)
					return nil
				}
				v := b.logins.Get(k[timeKeyLen:])
				if v == nil {
					c.add("login attempts expiry index: %x points at a missing entry", k)
					return nil
				}
				if a, err := decodeAttempts(v); err == nil && !bytes.Equal(timeKey(a.ExpiresAt), k[:timeKeyLen]) {
					c.add("login attempts expiry index: %x has the wrong time", k)
				}
				return nil
			})
		},
		func() { c.checkMFA(b, generation) },
		func() { c.checkCredentials(b, generation) },
		func() { c.checkFlows(b) },
		func() { c.checkCeremonies(b) },
		func() { c.checkAudit(b) },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		step()
	}
	return nil
}

// checkAudit checks that every audit entry decodes and has its index entries,
// and that the indexes hold no others.
func (c *checker) checkAudit(b *boltTx) {
	want := map[*bbolt.Bucket]int{}
	_ = b.audit.ForEach(func(k, v []byte) error {
		e, err := decodeAudit(k, v)
		if err != nil {
			c.add("audit entry %q: %v", k, err)
			return nil
		}
		for _, x := range b.auditIndexKeys(e) {
			want[x.bucket]++
			if x.bucket.Get(x.key) == nil {
				c.add("audit entry %s: index entry %x is missing", k, x.key)
			}
		}
		return nil
	})
	for _, x := range []struct {
		name   string
		bucket *bbolt.Bucket
	}{
		{"subject", b.auditUser}, {"actor", b.auditActor}, {"type", b.auditType},
		{"irregular", b.auditIrreg},
	} {
		if n := x.bucket.Stats().KeyN; n != want[x.bucket] {
			c.add("audit %s index: %d entries, want %d", x.name, n, want[x.bucket])
		}
	}
}

// checkFilters checks that every filter index entry belongs to a user that has
// the entry's role, status and account, and that every counter holds what counts
// (computed from the records) says and no other counter exists.
func (c *checker) checkFilters(b *boltTx, counts map[string]int) {
	for _, x := range []struct {
		name   string
		bucket *bbolt.Bucket
		fields int // length-prefixed fields before the ID
		prefix func(dst []byte, u *User) []byte
	}{
		{"filter index", b.filter, 2, pairPrefix},
		{"account filter index", b.filterAcct, 3, accountPrefix},
	} {
		_ = x.bucket.ForEach(func(k, _ []byte) error {
			rest, ok := k, true
			for range x.fields {
				if _, rest, ok = cutLP(rest); !ok {
					break
				}
			}
			if !ok || len(rest) == 0 {
				c.add("%s: malformed key %x", x.name, k)
				return nil
			}
			prefix, id := k[:len(k)-len(rest)], rest
			u, err := b.getUser(string(id))
			switch {
			case err == ErrNotFound:
				c.add("%s: %x points at missing user %q", x.name, k, id)
			case err != nil:
				// Reported with the users.
			case !bytes.Equal(x.prefix(nil, &u.User), prefix):
				c.add("%s: %x does not hold user %s's role, status or account", x.name, k, id)
			}
			return nil
		})
	}
	_ = b.count.ForEach(func(k, v []byte) error {
		want, ok := counts[string(k)]
		switch {
		case len(v) != 8:
			c.add("counter %x: %d bytes long", k, len(v))
		case !ok:
			c.add("counter %x: holds %d, but no user has its role, status or account", k, binary.BigEndian.Uint64(v))
		case binary.BigEndian.Uint64(v) != uint64(want):
			c.add("counter %x: holds %d, want %d", k, binary.BigEndian.Uint64(v), want)
		}
		return nil
	})
	for k, n := range counts {
		if b.count.Get([]byte(k)) == nil {
			c.add("counter %x is missing, want %d", k, n)
		}
	}
}

// checkMFA checks the MFA records and challenges: each decodes and belongs to an
// existing user (a challenge to the user's current Generation), each challenge
// is in the by-user and expiry indexes, and each index entry points at a
// challenge with that user and expiry. generation holds every user's.
func (c *checker) checkMFA(b *boltTx, generation map[string]int64) {
	_ = b.mfa.ForEach(func(k, v []byte) error {
		r, err := decodeMFA(k, v)
		switch {
		case err != nil:
			c.add("MFA record %q: %v", k, err)
		case r.IsEmpty():
			c.add("MFA record %q: empty, it should have been deleted", k)
		}
		if _, ok := generation[string(k)]; !ok {
			c.add("MFA record %q: user is missing", k)
		}
		return nil
	})
	_ = b.chal.ForEach(func(k, v []byte) error {
		ch, err := decodeChallenge(k, v)
		if err != nil {
			c.add("challenge %x: %v", k, err)
			return nil
		}
		if gen, ok := generation[ch.UserID]; !ok {
			c.add("challenge %x: user %q is missing", k, ch.UserID)
		} else if gen != ch.UserGeneration {
			c.add("challenge %x: created under generation %d of user %s, which is at %d", k, ch.UserGeneration, ch.UserID, gen)
		}
		if b.chalUser.Get(challengeUserKey(ch.UserID, k)) == nil {
			c.add("challenge %x: not in the by-user index", k)
		}
		if b.chalExp.Get(expiryKey(ch.ExpiresAt, k)) == nil {
			c.add("challenge %x: not in the expiry index", k)
		}
		return nil
	})
	_ = b.chalUser.ForEach(func(k, _ []byte) error {
		userID, hash, ok := cutLP(k)
		if !ok {
			c.add("challenge by-user index: malformed key %x", k)
			return nil
		}
		ch, err := b.getChallenge(hash)
		switch {
		case err == ErrNotFound:
			c.add("challenge by-user index: %x points at a missing challenge", k)
		case err != nil:
		case ch.UserID != userID:
			c.add("challenge by-user index: %q points at challenge %x of user %q", userID, hash, ch.UserID)
		}
		return nil
	})
	_ = b.chalExp.ForEach(func(k, _ []byte) error {
		if len(k) < timeKeyLen {
			c.add("challenge expiry index: malformed key %x", k)
			return nil
		}
		ch, err := b.getChallenge(k[timeKeyLen:])
		switch {
		case err == ErrNotFound:
			c.add("challenge expiry index: %x points at a missing challenge", k)
		case err != nil:
		case !bytes.Equal(timeKey(ch.ExpiresAt), k[:timeKeyLen]):
			c.add("challenge expiry index: %x has the wrong time", k)
		}
		return nil
	})
}

package users

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// CreateSession stores a new session and its indexes in one write transaction;
// see Store.
func (s *BoltStore) CreateSession(ctx context.Context, sr *SessionRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(sr.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeSession(sr)
	return s.update(ctx, "create session", func(b *boltTx) error {
		u, err := b.getUser(sr.UserID)
		if err != nil {
			return err
		}
		if u.Generation != sr.UserGeneration ||
			b.sessions.Get(sr.TokenHash) != nil ||
			b.sessID.Get([]byte(sr.ID)) != nil {
			return ErrConflict
		}
		if err := b.sessions.Put(sr.TokenHash, v); err != nil {
			return err
		}
		if err := b.indexSession(sr); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// GetSession returns a session and reads its user into u from one read
// transaction; see Store.
//
// It is the hot path of every authenticated request: it opens only the two
// buckets it reads, copies both records out of bbolt's memory into one string
// and decodes them from it. The session's TokenHash is left nil, and its
// Methods, when they are one of the common lists, are a list shared by every
// call, not to be modified.
func (s *BoltStore) GetSession(ctx context.Context, tokenHash [sha256.Size]byte, u *UserRecord) (SessionRecord, error) {
	if err := s.start(ctx); err != nil {
		return SessionRecord{}, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return SessionRecord{}, wrapBolt("get session", err)
	}
	defer tx.Rollback()
	var sr SessionRecord
	if err := readSessionTx(tx, tokenHash[:], &sr, u); err != nil {
		return SessionRecord{}, wrapBolt("get session", err)
	}
	return sr, nil
}

// readSessionTx is GetSession in tx, decoding the session into sr, which
// the caller keeps on its stack.
func readSessionTx(tx *bbolt.Tx, tokenHash []byte, sr *SessionRecord, u *UserRecord) error {
	sessions, users := tx.Bucket(bucketSessions), tx.Bucket(bucketUsers)
	if sessions == nil || users == nil {
		return fmt.Errorf("%w: bucket %s or %s is missing", ErrCorrupt, bucketSessions, bucketUsers)
	}
	sv := sessions.Get(tokenHash)
	if sv == nil {
		return ErrNotFound
	}
	userID, ok := sessionUserID(sv)
	var uv []byte
	if ok {
		uv = users.Get(userID)
	}
	if uv == nil {
		// A malformed record or a missing user: said the slow way.
		r, err := decodeSession(tokenHash, sv)
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: session %s belongs to missing user %s", ErrCorrupt, r.ID, r.UserID)
	}
	var text strings.Builder
	text.Grow(len(sv) + len(uv))
	text.Write(sv)
	text.Write(uv)
	t := text.String()
	// Both decoders set every field, so what sr and u held is overwritten
	// without clearing them first.
	if err := decodeSessionTo(sr, decoderOf(t[:len(sv)])); err != nil {
		return err
	}
	return decodeUserTo(u, sr.UserID, decoderOf(t[len(sv):]))
}

// TouchSession moves a session's LastSeenAt, and its user's LastActiveAt (with
// the user's filter index entries, which hold it), forward in one write; see
// Store. When seen is later than neither it writes nothing, so it costs a read,
// not a disk sync.
func (s *BoltStore) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	var later bool
	err := s.view(ctx, "touch session", func(b *boltTx) error {
		sr, u, err := b.getSessionUser(tokenHash)
		if err != nil {
			return err
		}
		later = seen.After(sr.LastSeenAt) || seen.After(u.LastActiveAt)
		return nil
	}, bucketSessions, bucketUsers)
	if err != nil || !later {
		return err
	}
	return s.update(ctx, "touch session", func(b *boltTx) error {
		sr, u, err := b.getSessionUser(tokenHash)
		if err != nil {
			return err
		}
		sessionLater, userLater := seen.After(sr.LastSeenAt), seen.After(u.LastActiveAt)
		if !sessionLater && !userLater {
			return errRollback
		}
		if sessionLater {
			sr.LastSeenAt = seen
			if err := b.putSession(sr); err != nil {
				return err
			}
		}
		if userLater {
			old := u.LastActiveAt
			u.LastActiveAt = seen
			if err := b.putUser(u); err != nil {
				return err
			}
			return b.touchFilters(u.ID, old, &u.User)
		}
		return nil
	})
}

// DeleteSession deletes a session and its index entries; see Store.
func (s *BoltStore) DeleteSession(ctx context.Context, tokenHash []byte, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	return s.update(ctx, "delete session", func(b *boltTx) error {
		sr, err := b.getSession(tokenHash)
		if err != nil {
			return err
		}
		for _, e := range audit {
			if e == nil {
				continue
			}
			if e.UserID == "" {
				e.UserID = sr.UserID
			}
			if e.SessionID == "" {
				e.SessionID = sr.ID
			}
		}
		if err := b.deleteSession(tokenHash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// DeleteSessionByID deletes a session of the user by its public ID; see Store.
func (s *BoltStore) DeleteSessionByID(ctx context.Context, userID, id string, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	return s.update(ctx, "delete session by ID", func(b *boltTx) error {
		hash := b.sessID.Get([]byte(id))
		if hash == nil {
			return ErrNotFound
		}
		hash = bytes.Clone(hash)
		sr, err := b.getSession(hash)
		if err != nil {
			return err
		}
		if sr.UserID != userID {
			return ErrNotFound
		}
		if err := b.deleteSession(hash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// DeleteUserSessions deletes the user's sessions and MFA challenges and
// increments its Generation in one write transaction; see Store.
func (s *BoltStore) DeleteUserSessions(ctx context.Context, userID string, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	return s.update(ctx, "delete user sessions", func(b *boltTx) error {
		u, err := b.getUser(userID)
		if err != nil {
			return err
		}
		if err := b.deleteUserSessions(userID); err != nil {
			return err
		}
		if err := b.deleteUserChallenges(userID); err != nil {
			return err
		}
		u.Generation++
		if err := b.putUser(u); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// ListSessions returns the user's sessions, found through an index; see Store.
func (s *BoltStore) ListSessions(ctx context.Context, userID string) ([]*SessionRecord, error) {
	out := []*SessionRecord{}
	err := s.view(ctx, "list sessions", func(b *boltTx) error {
		_, hashes := keysWithPrefix(b.sessUser, lp(nil, userID))
		for _, h := range hashes {
			sr, err := b.getSession(h)
			if err == ErrNotFound {
				return fmt.Errorf("%w: session index of user %s points at a missing session", ErrCorrupt, userID)
			}
			if err != nil {
				return err
			}
			out = append(out, sr)
		}
		return nil
	}, bucketSessUser, bucketSessions)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *SessionRecord) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteOtherSessions deletes the user's sessions but one, found through the
// by-user index, in one write transaction; see Store.
func (s *BoltStore) DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*AuditEntry) (int, error) {
	if err := checkAudit(audit); err != nil {
		return 0, err
	}
	n := 0
	err := s.update(ctx, "delete other sessions", func(b *boltTx) error {
		n = 0
		if b.users.Get([]byte(userID)) == nil {
			return ErrNotFound
		}
		prefix := lp(nil, userID)
		keys, hashes := keysWithPrefix(b.sessUser, prefix)
		for i, k := range keys {
			if string(k[len(prefix):]) == keepID {
				continue
			}
			err := b.deleteSession(hashes[i])
			if err == ErrNotFound {
				return fmt.Errorf("%w: session index of user %s points at a missing session", ErrCorrupt, userID)
			}
			if err != nil {
				return err
			}
			n++
		}
		return b.putAudit(audit)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// StepUpSession sets the AuthenticatedAt of the user's session with the public
// ID sessionID and, for a method that is not empty, its SecondFactorAt, and
// adds method to its Methods, in one write transaction, and
// returns the session as written, or ErrNotFound, writing nothing, if the
// session does not exist or belongs to another user. See Store. It is safe for
// concurrent use.
func (s *BoltStore) StepUpSession(ctx context.Context, userID, sessionID string, method AuthMethod, at time.Time, audit ...*AuditEntry) (*SessionRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var out *SessionRecord
	err := s.update(ctx, "step up session", func(b *boltTx) error {
		hash := b.sessID.Get([]byte(sessionID))
		if hash == nil {
			return ErrNotFound
		}
		sr, err := b.getSession(bytes.Clone(hash))
		if err == ErrNotFound {
			return fmt.Errorf("%w: session ID %q points at a missing session", ErrCorrupt, sessionID)
		}
		if err != nil {
			return err
		}
		if sr.UserID != userID {
			return ErrNotFound
		}
		sr.AuthenticatedAt = at
		if method != "" {
			sr.SecondFactorAt = at
			if !slices.Contains(sr.Methods, method) {
				sr.Methods = append(sr.Methods, method)
			}
		}
		if err := b.putSession(sr); err != nil {
			return err
		}
		out = sr.Clone()
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

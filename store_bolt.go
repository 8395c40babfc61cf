package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*BoltStore)(nil)

// Errors returned by OpenBoltStore, NewBoltStore and BoltStore.Check. Test for
// them with errors.Is.
var (
	// ErrFileInUse is returned by OpenBoltStore when another process, or another
	// store in this process, holds the file open and does not let go of it within
	// BoltOptions.Timeout. The error also matches bbolt's errors.ErrTimeout.
	ErrFileInUse = errors.New("users: bolt file in use by another process or store")

	// ErrSchemaTooNew is returned by OpenBoltStore and NewBoltStore for a file
	// written by a newer version of this package, whose layout this one cannot
	// read. The file is left untouched.
	ErrSchemaTooNew = errors.New("users: bolt file written by a newer version of this package")

	// ErrCorrupt is returned by BoltStore.Check when the file is damaged or its
	// indexes disagree with its records, and by other methods when they come upon
	// such damage.
	ErrCorrupt = errors.New("users: bolt file inconsistent")
)

// BoltOptions configures OpenBoltStore. A nil *BoltOptions, and every zero field,
// means the documented default.
type BoltOptions struct {
	// Timeout is how long OpenBoltStore waits for the file's lock when another
	// process or store holds it, before failing with ErrFileInUse. The default
	// (zero) is 1 second. A negative Timeout is an error: the store never waits
	// forever.
	Timeout time.Duration

	// SweepInterval, when positive, starts a goroutine that calls
	// DeleteExpired(ctx, Now()) at this interval until Close. The default (zero)
	// starts none; call DeleteExpired yourself. Negative is an error.
	SweepInterval time.Duration

	// Now is the sweeper's clock. The default (nil) is time.Now.
	Now func() time.Time

	// Logger receives the sweeper's failures. The default (nil) is slog.Default().
	Logger *slog.Logger

	// FileMode is the permission a new file is created with. The default (zero)
	// is 0600: the file holds password hashes.
	FileMode os.FileMode

	// InitialMmapSize is passed to bbolt (bbolt.Options.InitialMmapSize): when the
	// file stays smaller than this, read transactions never wait for a write
	// transaction that grows the file. The default (zero) lets bbolt size the
	// mapping as the file grows.
	InitialMmapSize int
}

// BoltStore is a Store kept in one bbolt file: embedded, durable, for one process.
// Every method that changes data runs in one bbolt write transaction (which
// concurrent writes may share, see below), synced to disk before the method
// returns, so an acknowledged write survives a crash or power loss. Only one process (and one BoltStore) can have the file open at a time; for
// several processes or machines use the PostgreSQL store.
//
// Everything the store keeps lives in top-level buckets whose names start with
// "userkit.", so the file may hold the program's own buckets too (see
// NewBoltStore).
//
// Methods return the errors the Store contract names as they are; any other
// failure (I/O, a closed store, damage found on the way, which also matches
// ErrCorrupt) is wrapped as "users: bolt store: <operation>: ...".
//
// A BoltStore is safe for concurrent use. Reads run in parallel with each other
// and with writes. Concurrent writes are grouped: the writes that arrive while
// one transaction commits are run together in the next, one after the other,
// and share its fsync (group commit), so many writers cost about as many syncs
// as one; each still returns only after its transaction is on disk.
type BoltStore struct {
	db     *bbolt.DB
	ownsDB bool
	now    func() time.Time
	logger *slog.Logger

	stopSweeper context.CancelFunc // nil without a sweeper
	sweeperDone chan struct{}

	group      committer // the write groups (store_bolt_commit.go)
	soloWrites bool      // a test's switch: one transaction per write

	activityPath int // a test's switch: the way listings by activity walk (walkActivity)

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// OpenBoltStore opens the bbolt file at path, creating it if it does not exist,
// and returns a store over it. A nil opts means the defaults (see BoltOptions).
//
// If the file is held by another process or store it fails after opts.Timeout
// (default 1 s) with an error matching both ErrFileInUse and bbolt's
// errors.ErrTimeout. A file written by a newer version of this package gives
// ErrSchemaTooNew; one written by an older version is migrated before
// OpenBoltStore returns: every record is re-encoded and every index built, 10,000
// records per write transaction. The first of them sets the new schema version,
// so older code refuses the file from then on; if the process stops half-way,
// the next open carries on where it stopped.
//
// Close closes the file and stops the sweeper.
func OpenBoltStore(path string, opts *BoltOptions) (*BoltStore, error) {
	var o BoltOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("users: open bolt store: negative Timeout %v", o.Timeout)
	case o.Timeout == 0:
		o.Timeout = time.Second
	}
	if o.SweepInterval < 0 {
		return nil, fmt.Errorf("users: open bolt store: negative SweepInterval %v", o.SweepInterval)
	}
	if o.FileMode == 0 {
		o.FileMode = 0o600
	}
	db, err := bbolt.Open(path, o.FileMode, &bbolt.Options{
		Timeout:         o.Timeout,
		InitialMmapSize: o.InitialMmapSize,
		// The store never reads DB.Stats, and keeping them takes a mutex
		// twice in every read transaction, which two cores validating
		// tokens at once contend for.
		NoStatistics: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s: %w", ErrFileInUse, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("users: open bolt store: %w", err)
	}
	s, err := newBoltStore(db, &o, true)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// NewBoltStore returns a store over a bbolt database the program has already
// opened, for programs that keep their own data in the same file. The store
// touches only the top-level buckets whose names start with "userkit.",
// creating or migrating them (see OpenBoltStore); the program must leave
// those names alone.
//
// The database must be writable and must not have NoSync set, or NewBoltStore
// returns an error. The store starts no sweeper: call DeleteExpired yourself.
// Close does not close db; close it yourself after closing the store.
func NewBoltStore(db *bbolt.DB) (*BoltStore, error) {
	return newBoltStore(db, &BoltOptions{}, false)
}

func newBoltStore(db *bbolt.DB, o *BoltOptions, ownsDB bool) (*BoltStore, error) {
	switch {
	case db == nil:
		return nil, errors.New("users: bolt store: nil *bbolt.DB")
	case db.IsReadOnly():
		return nil, errors.New("users: bolt store: the database is read-only")
	case db.NoSync:
		return nil, errors.New("users: bolt store: the database has NoSync set; acknowledged writes could be lost")
	}
	s := &BoltStore{db: db, ownsDB: ownsDB, now: o.Now, logger: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if err := s.migrate(); err != nil {
		return nil, err
	}
	if o.SweepInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopSweeper = cancel
		s.sweeperDone = make(chan struct{})
		go s.sweep(ctx, o.SweepInterval)
	}
	return s, nil
}

// Close stops the sweeper, waiting for a sweep in progress to finish, and closes
// the file if OpenBoltStore opened it (a database given to NewBoltStore stays
// open). It waits for transactions in progress. Calling Close again does nothing
// and returns the first call's result; any other method called after Close fails.
// Close is safe for concurrent use.
func (s *BoltStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stopSweeper != nil {
			s.stopSweeper()
			<-s.sweeperDone
		}
		if s.ownsDB {
			if err := s.db.Close(); err != nil {
				s.closeErr = fmt.Errorf("users: close bolt store: %w", err)
			}
		}
	})
	return s.closeErr
}

var present = []byte{1}

// errRollback ends a write transaction that found nothing to change.
var errRollback = errors.New("users: bolt: nothing to write")

// errFnFailed is returned inside a write transaction when the caller's fn
// failed; the method returns fn's error.
var errFnFailed = errors.New("users: bolt: fn failed")

// start checks what every method checks before doing work.
func (s *BoltStore) start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("users: bolt store: %w", bolterrors.ErrDatabaseNotOpen)
	}
	return nil
}

// view runs fn in a read transaction, with the buckets named in only opened
// (all of them if only is empty).
func (s *BoltStore) view(ctx context.Context, op string, fn func(b *boltTx) error, only ...[]byte) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := txBuckets(tx, only...)
		if err != nil {
			return err
		}
		b.activityPath = s.activityPath
		return fn(b)
	})
	return wrapBolt(op, err)
}

// update runs fn in a write transaction, committed and synced before update
// returns, which it may share with concurrent calls (see store_bolt_commit.go).
// fn must return one of the errors of writeNothing only before it writes: if
// it returns errRollback, update returns nil.
func (s *BoltStore) update(ctx context.Context, op string, fn func(b *boltTx) error) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	err := s.write(fn)
	if err == errRollback {
		return nil
	}
	return wrapBolt(op, err)
}

// wrapBolt gives failures context, leaving the errors of the Store contract as
// they are.
func wrapBolt(op string, err error) error {
	switch {
	case err == nil,
		err == ErrNotFound, err == ErrConflict,
		err == ErrDuplicateEmail, err == ErrDuplicateUsername:
		return err
	}
	return fmt.Errorf("users: bolt store: %s: %w", op, err)
}

// The Store methods.

// CreateUser stores a new user in one write transaction; see Store.
func (s *BoltStore) CreateUser(ctx context.Context, r *UserRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(r.ID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	return s.update(ctx, "create user", func(b *boltTx) error {
		if err := b.insertUser(r, false); err != nil {
			return err
		}
		if err := indexSearch(b.search, r.ID, nil, &r.User); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// insertUser stores a new user and its indexes except the search index, which
// the caller updates, or returns why it cannot, having written nothing.
//
// With fresh, the caller knows that no user has r.ID, and the lookup is
// skipped.
func (b *boltTx) insertUser(r *UserRecord, fresh bool) error {
	if r.Email != "" && b.email.Get([]byte(r.Email)) != nil {
		return ErrDuplicateEmail
	}
	if r.Username != "" && b.username.Get([]byte(r.Username)) != nil {
		return ErrDuplicateUsername
	}
	if r.ExternalID != "" && b.external.Get([]byte(r.ExternalID)) != nil {
		return ErrDuplicateExternalID
	}
	if !fresh && b.users.Get([]byte(r.ID)) != nil {
		return ErrConflict
	}
	if r.Email != "" {
		if err := b.email.Put([]byte(r.Email), []byte(r.ID)); err != nil {
			return err
		}
	}
	if r.Username != "" {
		if err := b.username.Put([]byte(r.Username), []byte(r.ID)); err != nil {
			return err
		}
	}
	if r.ExternalID != "" {
		if err := b.external.Put([]byte(r.ExternalID), []byte(r.ID)); err != nil {
			return err
		}
	}
	if err := b.indexFilters(r.ID, nil, &r.User); err != nil {
		return err
	}
	return b.putUser(r)
}

// CreateUsers stores the records CreateUser would store in one write
// transaction, one fsync for the batch; see Store.
func (s *BoltStore) CreateUsers(ctx context.Context, rs []*UserRecord, audit ...*AuditEntry) ([]error, error) {
	for _, r := range rs {
		if err := checkIDLen(r.ID); err != nil {
			return nil, err
		}
	}
	if len(audit) != 0 && len(audit) != len(rs) {
		return nil, fmt.Errorf("users: bolt store: create users: %d audit entries for %d records", len(audit), len(rs))
	}
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var errs []error
	err := s.update(ctx, "create users", func(b *boltTx) error {
		errs = make([]error, len(rs))
		ids, us := make([]string, 0, len(rs)), make([]*User, 0, len(rs))
		// An ID above the last key of its bucket is in no record: the
		// Manager's IDs are ULIDs, increasing, so an import skips a lookup
		// for each user and each entry.
		lastUser, lastAudit := lastKey(b.users), lastKey(b.audit)
		for i, r := range rs {
			err := b.insertUser(r, r.ID > lastUser)
			switch {
			case err == ErrDuplicateEmail, err == ErrDuplicateUsername, err == ErrDuplicateExternalID, err == ErrConflict:
				errs[i] = err
			case err != nil:
				return err
			default:
				ids, us = append(ids, r.ID), append(us, &r.User)
				lastUser = max(lastUser, r.ID)
				if len(audit) > 0 && audit[i] != nil && audit[i].Type != "" {
					e := audit[i]
					if err := b.putAuditEntry(e, e.ID > lastAudit); err != nil {
						return err
					}
					lastAudit = max(lastAudit, e.ID)
				}
			}
		}
		return indexSearchNew(b.search, ids, us)
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// lastKey returns the last key of bucket, "" if it is empty.
func lastKey(bucket *bbolt.Bucket) string {
	k, _ := bucket.Cursor().Last()
	return string(k)
}

// GetUsers returns the users with these IDs, nil for a missing one, in the
// order given, from one read transaction; see Store.
func (s *BoltStore) GetUsers(ctx context.Context, ids []string) ([]*UserRecord, error) {
	out := make([]*UserRecord, len(ids))
	err := s.view(ctx, "get users", func(b *boltTx) error {
		for i, id := range ids {
			r, err := b.getUser(id)
			if err == ErrNotFound {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = r
		}
		return nil
	}, bucketUsers)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetUsersByEmail returns the users with these emails, nil for a missing one,
// in the order given, from one read transaction; see Store.
func (s *BoltStore) GetUsersByEmail(ctx context.Context, emails []string) ([]*UserRecord, error) {
	out := make([]*UserRecord, len(emails))
	err := s.view(ctx, "get users by email", func(b *boltTx) error {
		for i, e := range emails {
			if e == "" {
				continue
			}
			id := b.email.Get([]byte(e))
			if id == nil {
				continue
			}
			r, err := b.getUser(string(id))
			if err == ErrNotFound {
				return fmt.Errorf("%w: index entry %q points at missing user %s", ErrCorrupt, e, id)
			}
			if err != nil {
				return err
			}
			out[i] = r
		}
		return nil
	}, bucketEmail, bucketUsers)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetUser returns the user with the ID; see Store.
func (s *BoltStore) GetUser(ctx context.Context, id string) (*UserRecord, error) {
	var r *UserRecord
	err := s.view(ctx, "get user", func(b *boltTx) (err error) {
		r, err = b.getUser(id)
		return err
	}, bucketUsers)
	return r, err
}

// GetUserByEmail returns the user with exactly this email, through an index; see Store.
func (s *BoltStore) GetUserByEmail(ctx context.Context, email string) (*UserRecord, error) {
	return s.getUserBy(ctx, "get user by email", func(b *boltTx) *bbolt.Bucket { return b.email }, email)
}

// GetUserByUsername returns the user with exactly this username, through an index;
// see Store.
func (s *BoltStore) GetUserByUsername(ctx context.Context, username string) (*UserRecord, error) {
	return s.getUserBy(ctx, "get user by username", func(b *boltTx) *bbolt.Bucket { return b.username }, username)
}

// GetUserByExternalID returns the user whose ExternalID is exactly id, through
// an index; see Store.
func (s *BoltStore) GetUserByExternalID(ctx context.Context, id string) (*UserRecord, error) {
	return s.getUserBy(ctx, "get user by external id", func(b *boltTx) *bbolt.Bucket { return b.external }, id)
}

func (s *BoltStore) getUserBy(ctx context.Context, op string, index func(*boltTx) *bbolt.Bucket, key string) (*UserRecord, error) {
	var r *UserRecord
	err := s.view(ctx, op, func(b *boltTx) error {
		if key == "" {
			return ErrNotFound
		}
		id := index(b).Get([]byte(key))
		if id == nil {
			b.decoyLookup()
			return ErrNotFound
		}
		var err error
		if r, err = b.getUser(string(id)); err == ErrNotFound {
			return fmt.Errorf("%w: index entry %q points at missing user %s", ErrCorrupt, key, id)
		}
		return err
	}, bucketEmail, bucketUsername, bucketExternal, bucketUsers)
	return r, err
}

// UpdateUser changes a user, its indexes and what Revoke names in one write
// transaction, shared with concurrent writes (see BoltStore). fn is called
// inside it, once unless another write of the group failed on I/O, when each
// is run again on its own. See Store.
func (s *BoltStore) UpdateUser(ctx context.Context, id string, fn func(r *UserRecord) (Revoke, error), audit ...*AuditEntry) (*UserRecord, error) {
	var out *UserRecord
	var fnErr error
	err := s.update(ctx, "update user", func(b *boltTx) error {
		fnErr = nil
		old, err := b.getUser(id)
		if err != nil {
			return err
		}
		r := old.Clone()
		revoke, err := fn(r)
		if err != nil {
			fnErr = err
			return errFnFailed
		}
		if r.ID != old.ID || r.Generation != old.Generation || r.ExternalID != old.ExternalID {
			return ErrKeyChanged
		}
		if err := checkAudit(audit); err != nil {
			return err // fn left an entry that cannot be stored: nothing written
		}
		if err := b.indexUser(r, old); err != nil {
			return err
		}
		if err := b.indexFilters(id, &old.User, &r.User); err != nil {
			return err
		}
		if searchFieldsChanged(&old.User, &r.User) {
			if err := indexSearch(b.search, id, &old.User, &r.User); err != nil {
				return err
			}
		}
		if revoke.Sessions {
			if err := b.deleteUserSessions(id); err != nil {
				return err
			}
			if err := b.deleteUserChallenges(id); err != nil {
				return err
			}
			r.Generation++
		}
		for _, p := range revoke.Tokens {
			if err := b.deleteUserTokens(lp(lp(nil, id), string(p))); err != nil {
				return err
			}
		}
		if err := b.putUser(r); err != nil {
			return err
		}
		if err := b.putAudit(audit); err != nil {
			return err
		}
		out = r.Clone()
		return nil
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUser deletes a user with its indexes, sessions, tokens, MFA record and
// challenges, credentials and throttle entry in one write transaction; see
// Store.
func (s *BoltStore) DeleteUser(ctx context.Context, id string, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	return s.update(ctx, "delete user", func(b *boltTx) error {
		r, err := b.getUser(id)
		if err != nil {
			return err
		}
		if r.Email != "" {
			if err := b.email.Delete([]byte(r.Email)); err != nil {
				return err
			}
		}
		if r.Username != "" {
			if err := b.username.Delete([]byte(r.Username)); err != nil {
				return err
			}
		}
		if r.ExternalID != "" {
			if err := b.external.Delete([]byte(r.ExternalID)); err != nil {
				return err
			}
		}
		if err := b.indexFilters(id, &r.User, nil); err != nil {
			return err
		}
		if err := indexSearch(b.search, id, &r.User, nil); err != nil {
			return err
		}
		if err := b.users.Delete([]byte(id)); err != nil {
			return err
		}
		if err := b.deleteUserSessions(id); err != nil {
			return err
		}
		if err := b.deleteUserTokens(lp(nil, id)); err != nil {
			return err
		}
		if err := b.deleteUserMFA(id); err != nil {
			return err
		}
		if err := b.deleteUserCredentials(id); err != nil {
			return err
		}
		if err := b.deleteAttempts([]byte(UserThrottleKey(id))); err != nil && err != ErrNotFound {
			return err
		}
		return b.putAudit(audit)
	})
}

// ListUsers returns one page of users in ID order from one read transaction,
// through the indexes of store_bolt_index.go; see Store. A page costs about
// Offset key steps plus Limit records, whatever the number of users, unless
// Search names a term the search index cannot narrow.
func (s *BoltStore) ListUsers(ctx context.Context, q ListQuery) ([]*UserRecord, error) {
	if q.Limit <= 0 {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		return []*UserRecord{}, nil
	}
	var out []*UserRecord
	err := s.view(ctx, "list users", func(b *boltTx) (err error) {
		out, err = b.listUsers(ctx, &q)
		return err
	}, userBuckets...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountUsers counts the users that m selects from one read transaction; see
// Store. Without Email, Username or Search it reads counters only.
func (s *BoltStore) CountUsers(ctx context.Context, m Match) (int, error) {
	n := 0
	need := userBuckets
	if m.Email == "" && m.Username == "" && m.Search == "" && activityFilter(&m) == nil {
		need = [][]byte{bucketCount}
	}
	err := s.view(ctx, "count users", func(b *boltTx) (err error) {
		n, err = b.countUsers(ctx, &m)
		return err
	}, need...)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// CreateTokenDecoy writes t, its indexes and the audit entries as CreateToken
// does and deletes them again, in one write transaction committed like
// CreateToken's, so that it dirties the same pages and waits for the same
// sync, and keeps nothing; see Store. A token or an audit entry stored under
// t's hash or an entry's ID already is left alone. It is safe for concurrent
// use.
func (s *BoltStore) CreateTokenDecoy(ctx context.Context, t *TokenRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(t.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeToken(t)
	return s.update(ctx, "create token decoy", func(b *boltTx) error {
		b.users.Get([]byte(t.UserID)) // CreateToken's check, whatever it finds
		if b.tokens.Get(t.Hash) == nil {
			if err := b.tokens.Put(t.Hash, v); err != nil {
				return err
			}
			if err := b.indexToken(t); err != nil {
				return err
			}
			if err := b.deleteToken(t.Hash); err != nil {
				return err
			}
		}
		for _, e := range audit {
			if e == nil || e.Type == "" || b.audit.Get([]byte(e.ID)) != nil {
				continue
			}
			if err := b.putAuditEntry(e, true); err != nil {
				return err
			}
			if err := b.deleteAudit([]byte(e.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// BoltStats is what BoltStore.Stats counts, all read in one transaction.
type BoltStats struct {
	Users int // user records

	// Sessions and Tokens count the stored sessions and one-time tokens,
	// including those that expired and have not been purged yet (DeleteExpired);
	// ExpiredSessions and ExpiredTokens count those.
	Sessions, ExpiredSessions int
	Tokens, ExpiredTokens     int

	// LoginThrottles counts login-throttle entries (identifiers with recent
	// failed logins).
	LoginThrottles int

	// AuditEntries counts the entries of the audit log (see
	// Options.AuditRetention for how long they are kept).
	AuditEntries int

	// Credentials counts the stored credentials (CredentialRecord) of every
	// kind.
	Credentials int

	// FileSize is the size in bytes of the database as the transaction saw it,
	// which is also the size Backup writes.
	FileSize int64
}

// Stats counts the records of the store: users, sessions, one-time tokens,
// login-throttle entries, audit entries and credentials, and which sessions and tokens expired at or before now.
// It reads in one read transaction, so writes go on meanwhile; its cost grows
// with the size of the file. It returns an error matching ErrCorrupt if the
// store's buckets are missing. Stats is safe for concurrent use.
func (s *BoltStore) Stats(ctx context.Context, now time.Time) (BoltStats, error) {
	var st BoltStats
	bound := timeKey(now)
	expired := func(idx *bbolt.Bucket) int {
		n := 0
		c := idx.Cursor()
		for k, _ := c.First(); len(k) >= timeKeyLen && bytes.Compare(k[:timeKeyLen], bound) <= 0; k, _ = c.Next() {
			n++
		}
		return n
	}
	err := s.view(ctx, "stats", func(b *boltTx) error {
		st.Users = b.users.Stats().KeyN
		st.Sessions = b.sessions.Stats().KeyN
		st.Tokens = b.tokens.Stats().KeyN
		st.LoginThrottles = b.logins.Stats().KeyN
		st.AuditEntries = b.audit.Stats().KeyN
		st.Credentials = b.cred.Stats().KeyN
		st.ExpiredSessions = expired(b.sessExp)
		st.ExpiredTokens = expired(b.tokExp)
		st.FileSize = b.users.Tx().Size()
		return nil
	})
	return st, err
}

package users

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*BoltStore)(nil)

// Errors of the bbolt store only, returned by OpenBoltStore, NewBoltStore,
// BoltStore.Check and (ErrCorrupt) any BoltStore method that reads a damaged
// record; the Manager passes them on, wrapped. MemoryStore and the PostgreSQL
// store never return them. Test for them with errors.Is. See "The bbolt store"
// in the package documentation.
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
// Every method that changes data is one bbolt write transaction, synced to disk
// before the method returns, so an acknowledged write survives a crash or power
// loss. Only one process (and one BoltStore) can have the file open at a time; for
// several processes or machines use the PostgreSQL store.
//
// Everything the store keeps lives under one top-level bucket, "userkit.users", so
// the file may hold the program's own buckets too (see NewBoltStore).
//
// Methods return the errors the Store contract names as they are; any other
// failure (I/O, a closed store, damage found on the way, which also matches
// ErrCorrupt) is wrapped as "users: bolt store: <operation>: ...".
//
// A BoltStore is safe for concurrent use. Writes are serialised by bbolt; reads
// run in parallel with each other and with writes.
type BoltStore struct {
	db     *bbolt.DB
	ownsDB bool
	now    func() time.Time
	logger *slog.Logger

	stopSweeper context.CancelFunc // nil without a sweeper
	sweeperDone chan struct{}

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
// ErrSchemaTooNew; one written by an older version is migrated in one transaction
// before OpenBoltStore returns.
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
// touches only its top-level bucket, "userkit.users", creating or migrating it
// (see OpenBoltStore); the program must leave that bucket alone.
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

func (s *BoltStore) sweep(ctx context.Context, every time.Duration) {
	defer close(s.sweeperDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.DeleteExpired(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.logger.Error("users: bolt store: deleting expired entries", "err", err)
		}
	}
}

// The file's layout. Everything lives under rootBucket; the sub-buckets are:
//
//	meta             "version" → schema version, 8 bytes big-endian
//	users            user ID → boltUser (JSON)
//	users.email      email → user ID
//	users.username   username → user ID
//	sessions         token hash → SessionRecord (JSON)
//	sessions.user    lp(user ID) + session ID → token hash
//	sessions.id      session ID → token hash
//	sessions.expiry  timeKey(ExpiresAt) + token hash → 1
//	tokens           hash → TokenRecord (JSON)
//	tokens.user      lp(user ID) + lp(purpose) + hash → 1
//	tokens.expiry    timeKey(ExpiresAt) + hash → 1
//	logins           throttle key → LoginAttempts (JSON)
//	logins.expiry    timeKey(ExpiresAt) + throttle key → 1
//
// lp(x) is x prefixed with its length (2 bytes big-endian), so that a prefix scan
// for one user never runs into another whose ID starts the same. Index values are
// never empty, so that Get tells a missing key from a present one.
var (
	rootBucket       = []byte("userkit.users")
	bucketMeta       = []byte("meta")
	bucketUsers      = []byte("users")
	bucketEmail      = []byte("users.email")
	bucketUsername   = []byte("users.username")
	bucketSessions   = []byte("sessions")
	bucketSessUser   = []byte("sessions.user")
	bucketSessID     = []byte("sessions.id")
	bucketSessExpiry = []byte("sessions.expiry")
	bucketTokens     = []byte("tokens")
	bucketTokUser    = []byte("tokens.user")
	bucketTokExpiry  = []byte("tokens.expiry")
	bucketLogins     = []byte("logins")
	bucketLoginExp   = []byte("logins.expiry")

	keyVersion = []byte("version")
)

// indexBuckets are rebuilt from the record buckets by rebuildIndexes.
var indexBuckets = [][]byte{
	bucketEmail, bucketUsername,
	bucketSessUser, bucketSessID, bucketSessExpiry,
	bucketTokUser, bucketTokExpiry,
	bucketLoginExp,
}

// boltSchemaVersion is the layout this code writes. boltMigrations[v] turns a
// version v file into a version v+1 file, inside the transaction that opens it.
const boltSchemaVersion = 1

var boltMigrations = []func(root *bbolt.Bucket) error{
	// 0 → 1. Version 0 is a file with the record buckets and no version key:
	// create whatever bucket is missing and build the indexes from the records.
	func(root *bbolt.Bucket) error {
		for _, name := range [][]byte{bucketMeta, bucketUsers, bucketSessions, bucketTokens, bucketLogins} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return rebuildIndexes(root)
	},
}

// migrate brings the file to boltSchemaVersion, refusing a newer one.
func (s *BoltStore) migrate() error {
	var current bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(rootBucket)
		if root == nil {
			return nil
		}
		v, err := schemaVersion(root)
		if err != nil {
			return err
		}
		if v > boltSchemaVersion {
			return fmt.Errorf("%w: file has schema version %d, this package reads up to %d", ErrSchemaTooNew, v, boltSchemaVersion)
		}
		current = v == boltSchemaVersion
		return nil
	})
	if err != nil || current {
		return wrapBolt("open", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(rootBucket)
		if err != nil {
			return err
		}
		v, err := schemaVersion(root)
		if err != nil {
			return err
		}
		if v > boltSchemaVersion {
			return fmt.Errorf("%w: file has schema version %d, this package reads up to %d", ErrSchemaTooNew, v, boltSchemaVersion)
		}
		for ; v < boltSchemaVersion; v++ {
			if err := boltMigrations[v](root); err != nil {
				return fmt.Errorf("migrating schema version %d to %d: %w", v, v+1, err)
			}
		}
		meta, err := root.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, boltSchemaVersion))
	})
	return wrapBolt("open", err)
}

// schemaVersion reads the version of the layout under root; 0 if none is stored.
func schemaVersion(root *bbolt.Bucket) (uint64, error) {
	meta := root.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keyVersion)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: schema version is %d bytes long, want 8", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// rebuildIndexes empties every index bucket and fills it again from the records.
func rebuildIndexes(root *bbolt.Bucket) error {
	for _, name := range indexBuckets {
		if root.Bucket(name) != nil {
			if err := root.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := root.CreateBucket(name); err != nil {
			return err
		}
	}
	b, err := openBuckets(root)
	if err != nil {
		return err
	}
	err = b.users.ForEach(func(k, v []byte) error {
		u, err := decodeUser(v)
		if err != nil {
			return err
		}
		if u.ID != string(k) {
			return fmt.Errorf("%w: user record under key %q has ID %q", ErrCorrupt, k, u.ID)
		}
		if err := b.indexUser(u, nil); err != nil {
			return fmt.Errorf("%w: user %s: %w", ErrCorrupt, u.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = b.sessions.ForEach(func(_, v []byte) error {
		s, err := decodeSession(v)
		if err != nil {
			return err
		}
		return b.indexSession(s)
	})
	if err != nil {
		return err
	}
	err = b.tokens.ForEach(func(_, v []byte) error {
		t, err := decodeToken(v)
		if err != nil {
			return err
		}
		return b.indexToken(t)
	})
	if err != nil {
		return err
	}
	return b.logins.ForEach(func(k, v []byte) error {
		a, err := decodeAttempts(v)
		if err != nil {
			return err
		}
		return b.loginExp.Put(expiryKey(a.ExpiresAt, k), present)
	})
}

// boltTx holds one transaction's buckets.
type boltTx struct {
	meta, users, email, username              *bbolt.Bucket
	sessions, sessUser, sessID, sessExp       *bbolt.Bucket
	tokens, tokUser, tokExp, logins, loginExp *bbolt.Bucket
}

func openBuckets(root *bbolt.Bucket) (*boltTx, error) {
	var b boltTx
	for _, x := range []struct {
		p    **bbolt.Bucket
		name []byte
	}{
		{&b.meta, bucketMeta}, {&b.users, bucketUsers}, {&b.email, bucketEmail}, {&b.username, bucketUsername},
		{&b.sessions, bucketSessions}, {&b.sessUser, bucketSessUser}, {&b.sessID, bucketSessID}, {&b.sessExp, bucketSessExpiry},
		{&b.tokens, bucketTokens}, {&b.tokUser, bucketTokUser}, {&b.tokExp, bucketTokExpiry},
		{&b.logins, bucketLogins}, {&b.loginExp, bucketLoginExp},
	} {
		if *x.p = root.Bucket(x.name); *x.p == nil {
			return nil, fmt.Errorf("%w: bucket %s/%s is missing", ErrCorrupt, rootBucket, x.name)
		}
	}
	return &b, nil
}

func txBuckets(tx *bbolt.Tx) (*boltTx, error) {
	root := tx.Bucket(rootBucket)
	if root == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, rootBucket)
	}
	return openBuckets(root)
}

// present is the value of index entries whose key says it all.
var present = []byte{1}

// errKeyChanged is returned by UpdateUser when fn changed the record's ID or
// Generation, which the Store contract forbids.
var errKeyChanged = errors.New("users: UpdateUser: fn must not change the record's ID or Generation")

// errRollback ends a write transaction that found nothing to change.
var errRollback = errors.New("users: bolt: nothing to write")

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

// view runs fn in a read transaction.
func (s *BoltStore) view(ctx context.Context, op string, fn func(b *boltTx) error) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := txBuckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	return wrapBolt(op, err)
}

// update runs fn in one write transaction, committed and synced before update
// returns. If fn returns errRollback, nothing is written and update returns nil.
func (s *BoltStore) update(ctx context.Context, op string, fn func(b *boltTx) error) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := txBuckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
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

// Record encodings. Records are JSON so that a file can be inspected with the
// bbolt command; field names are part of the file format.

// boltUser is a UserRecord as stored. Its Preferences shadows User's, which is
// omitempty, so that an empty map comes back empty rather than nil.
type boltUser struct {
	User
	Preferences  map[string]string `json:"preferences"`
	PasswordHash string            `json:"password_hash,omitempty"`
	Generation   int64             `json:"generation,omitempty"`
}

func encodeUser(r *UserRecord) ([]byte, error) {
	return json.Marshal(boltUser{User: r.User, Preferences: r.Preferences, PasswordHash: r.PasswordHash, Generation: r.Generation})
}

func decodeUser(v []byte) (*UserRecord, error) {
	var bu boltUser
	if err := json.Unmarshal(v, &bu); err != nil {
		return nil, fmt.Errorf("%w: user record: %w", ErrCorrupt, err)
	}
	r := &UserRecord{User: bu.User, PasswordHash: bu.PasswordHash, Generation: bu.Generation}
	r.Preferences = bu.Preferences
	return r, nil
}

func decodeSession(v []byte) (*SessionRecord, error) {
	var s SessionRecord
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: session record: %w", ErrCorrupt, err)
	}
	return &s, nil
}

func decodeToken(v []byte) (*TokenRecord, error) {
	var t TokenRecord
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("%w: token record: %w", ErrCorrupt, err)
	}
	return &t, nil
}

func decodeAttempts(v []byte) (LoginAttempts, error) {
	var a LoginAttempts
	if err := json.Unmarshal(v, &a); err != nil {
		return LoginAttempts{}, fmt.Errorf("%w: login attempts record: %w", ErrCorrupt, err)
	}
	return a, nil
}

// Key encodings.

// timeKey encodes t so that byte order is time order, for every time.Time:
// seconds since 1970 with the sign bit flipped, then nanoseconds.
func timeKey(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

const timeKeyLen = 12

func expiryKey(t time.Time, key []byte) []byte {
	return append(timeKey(t), key...)
}

// lp appends x prefixed with its length.
func lp(dst []byte, x string) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(x))), x...)
}

// cutLP splits k into the length-prefixed string at its start and the rest.
func cutLP(k []byte) (x string, rest []byte, ok bool) {
	if len(k) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n {
		return "", nil, false
	}
	return string(k[2 : 2+n]), k[2+n:], true
}

func sessionUserKey(userID, sessionID string) []byte {
	return append(lp(nil, userID), sessionID...)
}

func tokenUserKey(userID string, p Purpose, hash []byte) []byte {
	return append(lp(lp(nil, userID), string(p)), hash...)
}

// checkIDLen refuses an ID that would not fit its length prefix.
func checkIDLen(id string) error {
	if len(id) > bbolt.MaxKeySize/2 {
		return fmt.Errorf("users: bolt store: ID of %d bytes is too long", len(id))
	}
	return nil
}

// Operations on one transaction's buckets.

func (b *boltTx) getUser(id string) (*UserRecord, error) {
	v := b.users.Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeUser(v)
}

// decoyLookup does the work a found user costs, a record read and decoded, for
// a lookup that found nobody, so that the time a login takes does not tell
// whether its identifier names an account (a locked account is otherwise
// answered measurably later than a locked unknown identifier). It reads the
// first user, a real record of a real size, and discards it.
func (b *boltTx) decoyLookup() {
	if _, v := b.users.Cursor().First(); v != nil {
		_, _ = decodeUser(v) // only its cost matters
	}
}

func (b *boltTx) putUser(r *UserRecord) error {
	v, err := encodeUser(r)
	if err != nil {
		return err
	}
	return b.users.Put([]byte(r.ID), v)
}

// indexUser points r's email and username at it, replacing old's (nil for a new
// user). It returns ErrDuplicateEmail or ErrDuplicateUsername, having written
// nothing, if another user holds either.
func (b *boltTx) indexUser(r, old *UserRecord) error {
	var oldEmail, oldUsername string
	if old != nil {
		oldEmail, oldUsername = old.Email, old.Username
	}
	if r.Email != oldEmail && r.Email != "" {
		if id := b.email.Get([]byte(r.Email)); id != nil && string(id) != r.ID {
			return ErrDuplicateEmail
		}
	}
	if r.Username != oldUsername && r.Username != "" {
		if id := b.username.Get([]byte(r.Username)); id != nil && string(id) != r.ID {
			return ErrDuplicateUsername
		}
	}
	for _, x := range []struct {
		idx      *bbolt.Bucket
		old, new string
	}{{b.email, oldEmail, r.Email}, {b.username, oldUsername, r.Username}} {
		if x.old == x.new {
			continue
		}
		if x.old != "" {
			if err := x.idx.Delete([]byte(x.old)); err != nil {
				return err
			}
		}
		if x.new != "" {
			if err := x.idx.Put([]byte(x.new), []byte(r.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *boltTx) getSession(hash []byte) (*SessionRecord, error) {
	v := b.sessions.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeSession(v)
}

func (b *boltTx) putSession(s *SessionRecord) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return b.sessions.Put(s.TokenHash, v)
}

func (b *boltTx) indexSession(s *SessionRecord) error {
	if err := b.sessUser.Put(sessionUserKey(s.UserID, s.ID), bytes.Clone(s.TokenHash)); err != nil {
		return err
	}
	if err := b.sessID.Put([]byte(s.ID), bytes.Clone(s.TokenHash)); err != nil {
		return err
	}
	return b.sessExp.Put(expiryKey(s.ExpiresAt, s.TokenHash), present)
}

// deleteSession deletes the session with this hash and its index entries.
func (b *boltTx) deleteSession(hash []byte) error {
	s, err := b.getSession(hash)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		bucket *bbolt.Bucket
		key    []byte
	}{
		{b.sessions, hash},
		{b.sessUser, sessionUserKey(s.UserID, s.ID)},
		{b.sessID, []byte(s.ID)},
		{b.sessExp, expiryKey(s.ExpiresAt, hash)},
	} {
		if err := x.bucket.Delete(x.key); err != nil {
			return err
		}
	}
	return nil
}

// keysWithPrefix returns copies of the keys and values in bucket that start with prefix.
func keysWithPrefix(bucket *bbolt.Bucket, prefix []byte) (keys, values [][]byte) {
	c := bucket.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		values = append(values, bytes.Clone(v))
	}
	return keys, values
}

func (b *boltTx) deleteUserSessions(userID string) error {
	_, hashes := keysWithPrefix(b.sessUser, lp(nil, userID))
	for _, h := range hashes {
		if err := b.deleteSession(h); err != nil {
			return err
		}
	}
	return nil
}

func (b *boltTx) getToken(hash []byte) (*TokenRecord, error) {
	v := b.tokens.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeToken(v)
}

func (b *boltTx) indexToken(t *TokenRecord) error {
	if err := b.tokUser.Put(tokenUserKey(t.UserID, t.Purpose, t.Hash), present); err != nil {
		return err
	}
	return b.tokExp.Put(expiryKey(t.ExpiresAt, t.Hash), present)
}

func (b *boltTx) deleteToken(hash []byte) error {
	t, err := b.getToken(hash)
	if err != nil {
		return err
	}
	if err := b.tokens.Delete(hash); err != nil {
		return err
	}
	if err := b.tokUser.Delete(tokenUserKey(t.UserID, t.Purpose, hash)); err != nil {
		return err
	}
	return b.tokExp.Delete(expiryKey(t.ExpiresAt, hash))
}

// deleteUserTokens deletes the tokens whose by-user index key starts with prefix:
// lp(userID) for all the user's tokens, lp(lp(userID), purpose) for one purpose.
func (b *boltTx) deleteUserTokens(prefix []byte) error {
	keys, _ := keysWithPrefix(b.tokUser, prefix)
	for _, k := range keys {
		_, rest, _ := cutLP(k)
		_, hash, ok := cutLP(rest)
		if !ok {
			return fmt.Errorf("%w: malformed token index key %x", ErrCorrupt, k)
		}
		if err := b.deleteToken(hash); err != nil {
			return err
		}
	}
	return nil
}

func (b *boltTx) putAttempts(key []byte, a LoginAttempts) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := b.logins.Put(key, v); err != nil {
		return err
	}
	return b.loginExp.Put(expiryKey(a.ExpiresAt, key), present)
}

func (b *boltTx) deleteAttempts(key []byte) error {
	v := b.logins.Get(key)
	if v == nil {
		return ErrNotFound
	}
	a, err := decodeAttempts(v)
	if err != nil {
		return err
	}
	if err := b.logins.Delete(key); err != nil {
		return err
	}
	return b.loginExp.Delete(expiryKey(a.ExpiresAt, key))
}

// The Store methods.

// CreateUser stores a new user in one write transaction; see Store.
func (s *BoltStore) CreateUser(ctx context.Context, r *UserRecord) error {
	if err := checkIDLen(r.ID); err != nil {
		return err
	}
	return s.update(ctx, "create user", func(b *boltTx) error { return b.insertUser(r) })
}

// insertUser stores a new user and its indexes, or returns why it cannot.
func (b *boltTx) insertUser(r *UserRecord) error {
	if r.Email != "" && b.email.Get([]byte(r.Email)) != nil {
		return ErrDuplicateEmail
	}
	if r.Username != "" && b.username.Get([]byte(r.Username)) != nil {
		return ErrDuplicateUsername
	}
	if b.users.Get([]byte(r.ID)) != nil {
		return ErrConflict
	}
	if err := b.indexUser(r, nil); err != nil {
		return err
	}
	return b.putUser(r)
}

// CreateUsers stores the records CreateUser would store in one write
// transaction, one fsync for the batch; see Store.
func (s *BoltStore) CreateUsers(ctx context.Context, rs []*UserRecord) ([]error, error) {
	for _, r := range rs {
		if err := checkIDLen(r.ID); err != nil {
			return nil, err
		}
	}
	var errs []error
	err := s.update(ctx, "create users", func(b *boltTx) error {
		errs = make([]error, len(rs))
		for i, r := range rs {
			err := b.insertUser(r)
			switch {
			case err == ErrDuplicateEmail, err == ErrDuplicateUsername, err == ErrConflict:
				errs[i] = err
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
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
	})
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
	})
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
	})
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
	})
	return r, err
}

// UpdateUser changes a user, its indexes and what Revoke names in one write
// transaction; fn is called once, inside it. See Store.
func (s *BoltStore) UpdateUser(ctx context.Context, id string, fn func(r *UserRecord) (Revoke, error)) (*UserRecord, error) {
	var out *UserRecord
	var fnErr error
	err := s.update(ctx, "update user", func(b *boltTx) error {
		old, err := b.getUser(id)
		if err != nil {
			return err
		}
		r := old.Clone()
		revoke, err := fn(r)
		if err != nil {
			fnErr = err
			return err
		}
		if r.ID != old.ID || r.Generation != old.Generation {
			return errKeyChanged
		}
		if err := b.indexUser(r, old); err != nil {
			return err
		}
		if revoke.Sessions {
			if err := b.deleteUserSessions(id); err != nil {
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

// DeleteUser deletes a user with its indexes, sessions, tokens and throttle entry
// in one write transaction; see Store.
func (s *BoltStore) DeleteUser(ctx context.Context, id string) error {
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
		if err := b.users.Delete([]byte(id)); err != nil {
			return err
		}
		if err := b.deleteUserSessions(id); err != nil {
			return err
		}
		if err := b.deleteUserTokens(lp(nil, id)); err != nil {
			return err
		}
		if err := b.deleteAttempts([]byte(UserThrottleKey(id))); err != ErrNotFound {
			return err
		}
		return nil
	})
}

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

// CreateSession stores a new session and its indexes in one write transaction;
// see Store.
func (s *BoltStore) CreateSession(ctx context.Context, sr *SessionRecord) error {
	if err := checkIDLen(sr.UserID); err != nil {
		return err
	}
	v, err := json.Marshal(sr)
	if err != nil {
		return wrapBolt("create session", err)
	}
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
		return b.indexSession(sr)
	})
}

// GetSession returns a session and its user from one read transaction; see Store.
func (s *BoltStore) GetSession(ctx context.Context, tokenHash []byte) (*SessionRecord, *UserRecord, error) {
	var sr *SessionRecord
	var u *UserRecord
	err := s.view(ctx, "get session", func(b *boltTx) (err error) {
		if sr, err = b.getSession(tokenHash); err != nil {
			return err
		}
		if u, err = b.getUser(sr.UserID); err == ErrNotFound {
			return fmt.Errorf("%w: session %s belongs to missing user %s", ErrCorrupt, sr.ID, sr.UserID)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return sr, u, nil
}

// TouchSession moves a session's LastSeenAt forward; see Store. When seen is not
// later than the stored LastSeenAt it writes nothing, so it costs a read, not a
// disk sync.
func (s *BoltStore) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	var later bool
	err := s.view(ctx, "touch session", func(b *boltTx) error {
		sr, err := b.getSession(tokenHash)
		if err != nil {
			return err
		}
		later = seen.After(sr.LastSeenAt)
		return nil
	})
	if err != nil || !later {
		return err
	}
	return s.update(ctx, "touch session", func(b *boltTx) error {
		sr, err := b.getSession(tokenHash)
		if err != nil {
			return err
		}
		if !seen.After(sr.LastSeenAt) {
			return errRollback
		}
		sr.LastSeenAt = seen
		return b.putSession(sr)
	})
}

// DeleteSession deletes a session and its index entries; see Store.
func (s *BoltStore) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return s.update(ctx, "delete session", func(b *boltTx) error {
		return b.deleteSession(tokenHash)
	})
}

// DeleteSessionByID deletes a session of the user by its public ID; see Store.
func (s *BoltStore) DeleteSessionByID(ctx context.Context, userID, id string) error {
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
		return b.deleteSession(hash)
	})
}

// DeleteUserSessions deletes the user's sessions and increments its Generation in
// one write transaction; see Store.
func (s *BoltStore) DeleteUserSessions(ctx context.Context, userID string) error {
	return s.update(ctx, "delete user sessions", func(b *boltTx) error {
		u, err := b.getUser(userID)
		if err != nil {
			return err
		}
		if err := b.deleteUserSessions(userID); err != nil {
			return err
		}
		u.Generation++
		return b.putUser(u)
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
	})
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

// GetLoginAttempts returns the throttle entry for key; see Store.
func (s *BoltStore) GetLoginAttempts(ctx context.Context, key ThrottleKey) (LoginAttempts, error) {
	var a LoginAttempts
	err := s.view(ctx, "get login attempts", func(b *boltTx) (err error) {
		if v := b.logins.Get([]byte(key)); v != nil {
			a, err = decodeAttempts(v)
		}
		return err
	})
	if err != nil {
		return LoginAttempts{}, err
	}
	return a, nil
}

// UpdateLoginAttempts changes the throttle entry for key in one write
// transaction; fn is called once, inside it. See Store.
func (s *BoltStore) UpdateLoginAttempts(ctx context.Context, key ThrottleKey, fn func(a *LoginAttempts) error) (LoginAttempts, error) {
	var out LoginAttempts
	var fnErr error
	err := s.update(ctx, "update login attempts", func(b *boltTx) error {
		k := []byte(key)
		var a LoginAttempts
		v := b.logins.Get(k)
		if v != nil {
			var err error
			if a, err = decodeAttempts(v); err != nil {
				return err
			}
		}
		if err := fn(&a); err != nil {
			fnErr = err
			return err
		}
		if err := b.deleteAttempts(k); err != nil && err != ErrNotFound {
			return err
		}
		if a.IsZero() {
			if v == nil {
				return errRollback // nothing was there, nothing to write
			}
			return nil
		}
		out = a
		return b.putAttempts(k, a)
	})
	if fnErr != nil {
		return LoginAttempts{}, fnErr
	}
	if err != nil {
		return LoginAttempts{}, err
	}
	return out, nil
}

// CreateToken stores a one-time token and its indexes in one write transaction;
// see Store.
func (s *BoltStore) CreateToken(ctx context.Context, t *TokenRecord, replace bool) error {
	if err := checkIDLen(t.UserID); err != nil {
		return err
	}
	v, err := json.Marshal(t)
	if err != nil {
		return wrapBolt("create token", err)
	}
	return s.update(ctx, "create token", func(b *boltTx) error {
		if b.users.Get([]byte(t.UserID)) == nil {
			return ErrNotFound
		}
		if b.tokens.Get(t.Hash) != nil {
			return ErrConflict
		}
		if replace {
			if err := b.deleteUserTokens(lp(lp(nil, t.UserID), string(t.Purpose))); err != nil {
				return err
			}
		}
		if err := b.tokens.Put(t.Hash, v); err != nil {
			return err
		}
		return b.indexToken(t)
	})
}

// GetToken returns a one-time token without consuming it; see Store.
func (s *BoltStore) GetToken(ctx context.Context, hash []byte, purpose Purpose, now time.Time) (*TokenRecord, error) {
	var t *TokenRecord
	err := s.view(ctx, "get token", func(b *boltTx) (err error) {
		t, err = b.getToken(hash)
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.Purpose != purpose || !t.ExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	return t, nil
}

// ConsumeToken finds, deletes and returns a one-time token in one write
// transaction; see Store.
func (s *BoltStore) ConsumeToken(ctx context.Context, hash []byte, purpose Purpose, now time.Time) (*TokenRecord, error) {
	var t *TokenRecord
	err := s.update(ctx, "consume token", func(b *boltTx) (err error) {
		if t, err = b.getToken(hash); err != nil {
			return err
		}
		if t.Purpose != purpose {
			return ErrNotFound
		}
		return b.deleteToken(hash)
	})
	if err != nil {
		return nil, err
	}
	if !t.ExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	return t, nil
}

// expiredBatch is how many entries DeleteExpired deletes per write transaction,
// so that a large purge never holds the write lock for long.
const expiredBatch = 1000

// DeleteExpired deletes the sessions, tokens and throttle entries that expired at
// or before now, walking the expiry indexes from the oldest entry, so its cost
// grows with the number deleted. It deletes in write transactions of at most 1000
// entries; if ctx is cancelled between two it returns the count so far and the
// context's error. When nothing has expired it writes nothing. See Store.
func (s *BoltStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	bound := timeKey(now)
	expired := func(k []byte) bool {
		return len(k) >= timeKeyLen && bytes.Compare(k[:timeKeyLen], bound) <= 0
	}
	total := 0
	for {
		var found bool
		err := s.view(ctx, "delete expired", func(b *boltTx) error {
			for _, idx := range []*bbolt.Bucket{b.sessExp, b.tokExp, b.loginExp} {
				if k, _ := idx.Cursor().First(); expired(k) {
					found = true
				}
			}
			return nil
		})
		if err != nil || !found {
			return total, err
		}
		n := 0
		err = s.update(ctx, "delete expired", func(b *boltTx) error {
			n = 0
			for _, x := range []struct {
				idx *bbolt.Bucket
				del func(key []byte) error
			}{
				{b.sessExp, b.deleteSession},
				{b.tokExp, b.deleteToken},
				{b.loginExp, b.deleteAttempts},
			} {
				var keys [][]byte
				c := x.idx.Cursor()
				for k, _ := c.First(); expired(k) && n+len(keys) < expiredBatch; k, _ = c.Next() {
					keys = append(keys, bytes.Clone(k))
				}
				for _, k := range keys {
					switch err := x.del(k[timeKeyLen:]); err {
					case nil:
						n++
					case ErrNotFound:
						// An index entry without its record (Check reports
						// such damage): dropping it lets the purge go on.
					default:
						return err
					}
					if err := x.idx.Delete(k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < expiredBatch {
			return total, nil
		}
	}
}

// maxCheckProblems bounds how many problems Check lists.
const maxCheckProblems = 100

// Check verifies the file: bbolt's own consistency check (Tx.Check) finds
// nothing, every record decodes and sits under its own key, and every index
// agrees with the records both ways: each email, username, session and token
// index entry points at an existing record with that key, each record is indexed,
// and no session or token belongs to a missing user (or, for a session, to
// another Generation of the user). It returns nil, or an error matching ErrCorrupt
// that lists the first 100 problems.
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
	if b, err := txBuckets(tx); err != nil {
		c.add("%v", err)
	} else if err := c.checkAll(ctx, b); err != nil {
		return err
	}
	return c.err()
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
	if v := b.meta.Get(keyVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != boltSchemaVersion {
		c.add("schema version is %x, want %d", v, boltSchemaVersion)
	}
	generation := map[string]int64{}
	steps := []func(){
		func() {
			_ = b.users.ForEach(func(k, v []byte) error {
				u, err := decodeUser(v)
				if err != nil {
					c.add("user %q: %v", k, err)
					return nil
				}
				if u.ID != string(k) {
					c.add("user under key %q has ID %q", k, u.ID)
				}
				generation[string(k)] = u.Generation
				if u.Email != "" && string(b.email.Get([]byte(u.Email))) != string(k) {
					c.add("user %s: email %q is not indexed", k, u.Email)
				}
				if u.Username != "" && string(b.username.Get([]byte(u.Username))) != string(k) {
					c.add("user %s: username %q is not indexed", k, u.Username)
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
		func() {
			_ = b.sessions.ForEach(func(k, v []byte) error {
				s, err := decodeSession(v)
				if err != nil {
					c.add("session %x: %v", k, err)
					return nil
				}
				if !bytes.Equal(s.TokenHash, k) {
					c.add("session under key %x has token hash %x", k, s.TokenHash)
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
				t, err := decodeToken(v)
				if err != nil {
					c.add("token %x: %v", k, err)
					return nil
				}
				if !bytes.Equal(t.Hash, k) {
					c.add("token under key %x has hash %x", k, t.Hash)
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
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		step()
	}
	return nil
}

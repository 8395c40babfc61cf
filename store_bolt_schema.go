package users

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

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

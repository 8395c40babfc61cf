package users

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// The file's layout (schema version 10). The store's buckets sit at the top
// level of the file, each named "userkit." and what it holds, so that a
// program sharing the file (NewBoltStore) keeps every other name:
//
//	userkit.users           the root of the layout up to version 9, which keeps
//	                        only its meta bucket: code that reads up to version 9
//	                        finds the version there and refuses the file
//	                        (ErrSchemaTooNew)
//	  meta                  "version" → schema version, 8 bytes big-endian
//	                        "rebuild" → phase + last key done, only while a rebuild runs
//	userkit.users.records
//	                        user ID → user record (binary, store_bolt_encoding.go)
//	userkit.users.email     email → user ID
//	userkit.users.username  username → user ID
//	userkit.users.external  external ID → user ID (users who have one)
//	userkit.users.filter    lp(role) + lp(status) + user ID → timeKey(LastActiveAt)
//	userkit.users.filter.account
//	                        lp(account) + lp(role) + lp(status) + user ID
//	                        → timeKey(LastActiveAt)
//	userkit.users.active    timeKey(LastActiveAt) + user ID → 1
//	userkit.users.count     tag + one of those prefixes → users, 8 bytes big-endian
//	userkit.users.search    the search index (store_bolt_search.go)
//	userkit.sessions        token hash → session record (binary)
//	userkit.sessions.user   lp(user ID) + session ID → token hash
//	userkit.sessions.id     session ID → token hash
//	userkit.sessions.expiry timeKey(ExpiresAt) + token hash → 1
//	userkit.tokens          hash → token record (binary)
//	userkit.tokens.user     lp(user ID) + lp(purpose) + hash → 1
//	userkit.tokens.expiry   timeKey(ExpiresAt) + hash → 1
//	userkit.logins          throttle key → LoginAttempts (JSON)
//	userkit.logins.expiry   timeKey(ExpiresAt) + throttle key → 1
//	userkit.mfa             user ID → MFA record (binary), the user's second factors
//	userkit.challenges      hash → MFA challenge record (binary)
//	userkit.challenges.user lp(user ID) + hash → 1
//	userkit.challenges.expiry
//	                        timeKey(ExpiresAt) + hash → 1
//	userkit.credentials     lp(kind) + identifier → credential record (binary,
//	                        store_bolt_credential.go)
//	userkit.credentials.user
//	                        lp(user ID) + lp(kind) + identifier → 1
//	userkit.flows           state hash → provider flow record (binary,
//	                        store_bolt_flow.go)
//	userkit.flows.expiry    timeKey(ExpiresAt) + state hash → 1
//	userkit.ceremonies      challenge hash → ceremony record (binary,
//	                        store_bolt_ceremony.go)
//	userkit.ceremonies.expiry
//	                        timeKey(ExpiresAt) + hash → 1
//	userkit.audit           entry ID → audit entry (binary)
//	userkit.audit.user      lp(UserID) + entry ID → 1, for entries with a UserID
//	userkit.audit.actor     lp(ActorID) + entry ID → 1, for entries with an ActorID
//	userkit.audit.type      lp(Type) + entry ID → 1
//	userkit.audit.irregular timeKey(Time) + entry ID → 1, for entries whose ID is
//	                        not a ULID of their Time's millisecond: the log's own
//	                        order is the time order of all others (store_bolt_audit.go)
//
// Up to version 9 the same buckets were nested under userkit.users, named
// without the "userkit." (nestedName); a read then opened that bucket and
// sought its two among three dozen. At the top level, a session's validation
// opens the two buckets it reads and nothing else.
//
// lp(x) is x prefixed with its length (2 bytes big-endian), so that a prefix scan
// for one user never runs into another whose ID starts the same. Index values are
// never empty, so that Get tells a missing key from a present one. The filter
// indexes and the counters are described in store_bolt_index.go.
var (
	rootBucket       = []byte("userkit.users")
	bucketMeta       = []byte("meta")
	bucketUsers      = []byte("userkit.users.records")
	bucketEmail      = []byte("userkit.users.email")
	bucketUsername   = []byte("userkit.users.username")
	bucketExternal   = []byte("userkit.users.external")
	bucketFilter     = []byte("userkit.users.filter")
	bucketFilterAcct = []byte("userkit.users.filter.account")
	bucketCount      = []byte("userkit.users.count")
	bucketActive     = []byte("userkit.users.active")
	bucketSessions   = []byte("userkit.sessions")
	bucketSessUser   = []byte("userkit.sessions.user")
	bucketSessID     = []byte("userkit.sessions.id")
	bucketSessExpiry = []byte("userkit.sessions.expiry")
	bucketTokens     = []byte("userkit.tokens")
	bucketTokUser    = []byte("userkit.tokens.user")
	bucketTokExpiry  = []byte("userkit.tokens.expiry")
	bucketLogins     = []byte("userkit.logins")
	bucketLoginExp   = []byte("userkit.logins.expiry")
	bucketMFA        = []byte("userkit.mfa")
	bucketChal       = []byte("userkit.challenges")
	bucketChalUser   = []byte("userkit.challenges.user")
	bucketChalExp    = []byte("userkit.challenges.expiry")
	bucketCred       = []byte("userkit.credentials")
	bucketCredUser   = []byte("userkit.credentials.user")
	bucketFlows      = []byte("userkit.flows")
	bucketFlowExp    = []byte("userkit.flows.expiry")
	bucketCer        = []byte("userkit.ceremonies")
	bucketCerExp     = []byte("userkit.ceremonies.expiry")
	bucketAudit      = []byte("userkit.audit")
	bucketAuditUser  = []byte("userkit.audit.user")
	bucketAuditActor = []byte("userkit.audit.actor")
	bucketAuditType  = []byte("userkit.audit.type")
	bucketAuditIrreg = []byte("userkit.audit.irregular")

	keyVersion = []byte("version")
	keyRebuild = []byte("rebuild")
)

// nestedName is the name that the top-level bucket name had under rootBucket
// up to schema version 9: the same without "userkit.", but for the users'
// records, which were "users" (the name the root itself keeps).
func nestedName(name []byte) []byte {
	if bytes.Equal(name, bucketUsers) {
		return []byte("users")
	}
	return bytes.TrimPrefix(name, []byte("userkit."))
}

// recordBuckets hold the records; everything else is derived from them. A
// rebuild walks them in this order, one phase each.
var recordBuckets = [][]byte{bucketUsers, bucketSessions, bucketTokens, bucketLogins, bucketAudit,
	bucketMFA, bucketChal, bucketCred, bucketFlows, bucketCer}

// indexBuckets are emptied and filled again from the records by a rebuild.
var indexBuckets = [][]byte{
	bucketEmail, bucketUsername, bucketExternal, bucketFilter, bucketFilterAcct, bucketActive, bucketCount, bucketSearch,
	bucketSessUser, bucketSessID, bucketSessExpiry,
	bucketTokUser, bucketTokExpiry,
	bucketLoginExp,
	bucketChalUser, bucketChalExp,
	bucketCredUser,
	bucketFlowExp,
	bucketCerExp,
	bucketAuditUser, bucketAuditActor, bucketAuditType, bucketAuditIrreg,
}

// boltSchemaVersion is the layout this code writes. Version history:
//
//	0  records in JSON, no indexes, no version key (before the first release)
//	1  JSON records; email, username, session, token and expiry indexes
//	2  binary user, session and token records; the filter indexes, counters
//	   and search index
//	3  record format 2: users with LastActiveAt, sessions with their client
//	   and authentication methods; the filter indexes hold LastActiveAt, and
//	   the activity index; the audit log and its indexes; second factors: the
//	   mfa and challenges record buckets and the challenges.user and
//	   challenges.expiry indexes
//	4  record format 3: sessions with AuthenticatedAt (a session of an older
//	   format decodes with the later of its CreatedAt and SecondFactorAt, and
//	   the rebuild writes it so)
//	5  credentials: the credentials record bucket and its credentials.user
//	   index
//	6  users with an ExternalID (a flag bit of the user record) and the
//	   users.external index
//	7  provider flows: the flows record bucket and its flows.expiry index
//	8  record format 4: sessions with their own IdleTimeout (zero, none of
//	   their own, in an older format)
//	9  ceremonies (passkey challenges): the ceremonies record bucket and its
//	   ceremonies.expiry index
//	10 the buckets at the top level of the file, named "userkit." and their
//	   old name (the users' records "userkit.users.records"); userkit.users
//	   keeps only meta
//
// A file at an older version is brought to this one by a rebuild: it reads
// every record from the bucket under userkit.users where an older version
// kept it, writes it re-encoded into its top-level bucket, builds every index
// again, and deletes each old bucket once its records are all written, so
// that userkit.users is left with meta alone. Code that reads up to version 9
// refuses a version 10 file with ErrSchemaTooNew, and the version is set to 10
// in the rebuild's first transaction, so no older binary ever reads a
// half-rebuilt file.
//
// bbolt's Tx.MoveBucket would move a bucket without copying its records, but
// only under the name it had: it cannot add the "userkit." that keeps the
// store's names apart from the program's, so the rebuild copies the records,
// as every earlier upgrade did.
const boltSchemaVersion = 10

// boltRebuildBatch is how many records a rebuild handles per write transaction,
// so that memory stays bounded however large the file is. A test changes it.
var boltRebuildBatch = 10_000

// migrate brings the file to boltSchemaVersion, refusing a newer one. A file at
// an older version is rebuilt (see boltSchemaVersion) in write transactions of
// boltRebuildBatch records, each of which records how far it got in meta
// "rebuild": if the process stops half-way, the next open carries on from there.
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
		current = v == boltSchemaVersion && root.Bucket(bucketMeta).Get(keyRebuild) == nil
		return nil
	})
	if err != nil || current {
		return wrapBolt("open", err)
	}
	var from uint64
	err = s.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(rootBucket)
		if err != nil {
			return err
		}
		if from, err = schemaVersion(root); err != nil {
			return err
		}
		if from > boltSchemaVersion {
			return fmt.Errorf("%w: file has schema version %d, this package reads up to %d", ErrSchemaTooNew, from, boltSchemaVersion)
		}
		if from < boltSchemaVersion {
			return startRebuild(tx, root)
		}
		return nil
	})
	for done := false; err == nil && !done; {
		err = s.db.Update(func(tx *bbolt.Tx) (err error) {
			done, err = rebuildStep(tx, boltRebuildBatch)
			return err
		})
	}
	if err != nil && !errors.Is(err, ErrSchemaTooNew) {
		err = fmt.Errorf("migrating schema version %d to %d: %w", from, boltSchemaVersion, err)
	}
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

// startRebuild creates any missing record bucket, empties every index bucket,
// deletes the index buckets of the nested layout (up to version 9) under root,
// sets the version and starts the rebuild that rebuildStep carries out.
func startRebuild(tx *bbolt.Tx, root *bbolt.Bucket) error {
	for _, name := range recordBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	for _, name := range indexBuckets {
		if root.Bucket(nestedName(name)) != nil {
			if err := root.DeleteBucket(nestedName(name)); err != nil {
				return err
			}
		}
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	meta, err := root.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, boltSchemaVersion)); err != nil {
		return err
	}
	return meta.Put(keyRebuild, []byte{0})
}

// metaBucket returns the meta bucket under rootBucket.
func metaBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	if root := tx.Bucket(rootBucket); root != nil {
		if meta := root.Bucket(bucketMeta); meta != nil {
			return meta, nil
		}
	}
	return nil, fmt.Errorf("%w: bucket %s/%s is missing", ErrCorrupt, rootBucket, bucketMeta)
}

// rebuildStep re-encodes and indexes the next n records of the rebuild in tx
// and records how far it got; done is true when nothing is left (or no rebuild
// was running). A phase reads the records of its record bucket where versions
// up to 9 kept them, under rootBucket, and deletes that bucket once it has
// written them all to the top-level one; a file without it (one already in
// this layout) has its records read from the top-level bucket and re-encoded
// in place. Records may be JSON (from version 0 or 1) or already binary.
func rebuildStep(tx *bbolt.Tx, n int) (done bool, err error) {
	meta, err := metaBucket(tx)
	if err != nil {
		return false, err
	}
	b, err := txBuckets(tx)
	if err != nil {
		return false, err
	}
	marker := meta.Get(keyRebuild)
	if marker == nil {
		return true, nil
	}
	if len(marker) == 0 || int(marker[0]) >= len(recordBuckets) {
		return false, fmt.Errorf("%w: malformed rebuild marker %x", ErrCorrupt, marker)
	}
	phase, after := int(marker[0]), bytes.Clone(marker[1:])
	root := tx.Bucket(rootBucket)
	old := nestedName(recordBuckets[phase])
	src := root.Bucket(old)
	if src == nil {
		src = tx.Bucket(recordBuckets[phase])
	}
	var keys, values [][]byte
	c := src.Cursor()
	k, v := c.First()
	if len(after) > 0 {
		if k, v = c.Seek(after); bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for ; k != nil && len(keys) < n; k, v = c.Next() {
		keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
	}
	if err := b.rebuild(phase, keys, values); err != nil {
		return false, err
	}
	if err := b.flushCounts(); err != nil {
		return false, err
	}
	if len(keys) == n {
		return false, meta.Put(keyRebuild, append([]byte{byte(phase)}, keys[n-1]...))
	}
	if root.Bucket(old) != nil {
		if err := root.DeleteBucket(old); err != nil {
			return false, err
		}
	}
	if phase+1 < len(recordBuckets) {
		return false, meta.Put(keyRebuild, []byte{byte(phase + 1)})
	}
	return true, meta.Delete(keyRebuild)
}

// rebuild re-encodes and indexes records of one phase.
func (b *boltTx) rebuild(phase int, keys, values [][]byte) error {
	var ids []string
	var us []*User
	for i, k := range keys {
		v := values[i]
		switch phase {
		case 0:
			r, err := decodeAnyUser(k, v)
			if err != nil {
				return err
			}
			if err := b.indexUser(r, nil); err != nil {
				return fmt.Errorf("%w: user %s: %w", ErrCorrupt, r.ID, err)
			}
			if err := b.indexFilters(r.ID, nil, &r.User); err != nil {
				return err
			}
			if err := b.users.Put(k, encodeUser(r)); err != nil {
				return err
			}
			ids, us = append(ids, r.ID), append(us, &r.User)
		case 1:
			s, err := decodeAnySession(k, v)
			if err != nil {
				return err
			}
			if err := b.sessions.Put(k, encodeSession(s)); err != nil {
				return err
			}
			if err := b.indexSession(s); err != nil {
				return err
			}
		case 2:
			t, err := decodeAnyToken(k, v)
			if err != nil {
				return err
			}
			if err := b.tokens.Put(k, encodeToken(t)); err != nil {
				return err
			}
			if err := b.indexToken(t); err != nil {
				return err
			}
		case 3:
			a, err := decodeAttempts(v)
			if err != nil {
				return err
			}
			// Throttle entries and audit entries kept their format
			// since they were first written: copied as they are.
			if err := b.logins.Put(k, v); err != nil {
				return err
			}
			if err := b.loginExp.Put(expiryKey(a.ExpiresAt, k), present); err != nil {
				return err
			}
		case 4:
			e, err := decodeAudit(k, v)
			if err != nil {
				return err
			}
			if err := b.audit.Put(k, v); err != nil {
				return err
			}
			if err := b.indexAudit(e); err != nil {
				return err
			}
		case 7:
			if err := b.rebuildCredential(k, v); err != nil {
				return err
			}
		case 8:
			if err := b.rebuildFlow(k, v); err != nil {
				return err
			}
		case 9:
			if err := b.rebuildCeremony(k, v); err != nil {
				return err
			}
		default:
			if err := b.rebuildMFA(recordBuckets[phase], k, v); err != nil {
				return err
			}
		}
	}
	if len(ids) > 0 {
		return indexSearchNew(b.search, ids, us)
	}
	return nil
}

// Version 1 records were JSON, the encoding of the types below; a rebuild reads
// them once and writes them back in the binary form.

// v1User is a version 1 user record. Its Preferences shadows User's, which is
// omitempty, so that an empty map came back empty rather than nil.
type v1User struct {
	User
	Preferences  map[string]string `json:"preferences"`
	PasswordHash string            `json:"password_hash,omitempty"`
	Generation   int64             `json:"generation,omitempty"`
}

func isJSON(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// decodeAnyUser decodes a user record in the version 1 (JSON) or binary format.
func decodeAnyUser(k, v []byte) (*UserRecord, error) {
	if !isJSON(v) {
		return decodeUser(k, v)
	}
	var bu v1User
	if err := json.Unmarshal(v, &bu); err != nil {
		return nil, fmt.Errorf("%w: user record: %w", ErrCorrupt, err)
	}
	if bu.ID != string(k) {
		return nil, fmt.Errorf("%w: user record under key %q has ID %q", ErrCorrupt, k, bu.ID)
	}
	r := &UserRecord{User: bu.User, PasswordHash: bu.PasswordHash, Generation: bu.Generation}
	r.Preferences = bu.Preferences
	return r, nil
}

// decodeAnySession decodes a session record in the version 1 (JSON) or binary
// format.
func decodeAnySession(k, v []byte) (*SessionRecord, error) {
	if !isJSON(v) {
		return decodeSession(k, v)
	}
	var s SessionRecord
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: session record: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(s.TokenHash, k) {
		return nil, fmt.Errorf("%w: session under key %x has token hash %x", ErrCorrupt, k, s.TokenHash)
	}
	return &s, nil
}

// decodeAnyToken decodes a token record in the version 1 (JSON) or binary format.
func decodeAnyToken(k, v []byte) (*TokenRecord, error) {
	if !isJSON(v) {
		return decodeToken(k, v)
	}
	var t TokenRecord
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("%w: token record: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(t.Hash, k) {
		return nil, fmt.Errorf("%w: token under key %x has hash %x", ErrCorrupt, k, t.Hash)
	}
	return &t, nil
}

// boltTx holds one transaction's buckets.
type boltTx struct {
	users, email, username, external, filter, filterAcct, active, count, search *bbolt.Bucket
	sessions, sessUser, sessID, sessExp                                         *bbolt.Bucket
	tokens, tokUser, tokExp, logins, loginExp                                   *bbolt.Bucket
	mfa, chal, chalUser, chalExp                                                *bbolt.Bucket
	cred, credUser                                                              *bbolt.Bucket
	flows, flowExp                                                              *bbolt.Bucket
	cer, cerExp                                                                 *bbolt.Bucket
	audit, auditUser, auditActor, auditType, auditIrreg                         *bbolt.Bucket

	// counts holds the changes to the counters made in this transaction, by
	// key, until flushCounts writes them just before the commit: a batch of
	// creates changes each counter once, not once per user.
	counts map[string]int64

	activityPath int // BoltStore.activityPath
}

// txBuckets opens the store's buckets in tx, or only those named in only: a
// read that needs two buckets need not pay for opening three dozen. A write
// transaction opens them all. The meta bucket is not among them (metaBucket).
func txBuckets(tx *bbolt.Tx, only ...[]byte) (*boltTx, error) {
	var b boltTx
	for _, x := range []struct {
		p    **bbolt.Bucket
		name []byte
	}{
		{&b.users, bucketUsers}, {&b.email, bucketEmail}, {&b.username, bucketUsername}, {&b.external, bucketExternal},
		{&b.filter, bucketFilter}, {&b.filterAcct, bucketFilterAcct}, {&b.active, bucketActive},
		{&b.count, bucketCount}, {&b.search, bucketSearch},
		{&b.sessions, bucketSessions}, {&b.sessUser, bucketSessUser}, {&b.sessID, bucketSessID}, {&b.sessExp, bucketSessExpiry},
		{&b.tokens, bucketTokens}, {&b.tokUser, bucketTokUser}, {&b.tokExp, bucketTokExpiry},
		{&b.logins, bucketLogins}, {&b.loginExp, bucketLoginExp},
		{&b.mfa, bucketMFA}, {&b.chal, bucketChal}, {&b.chalUser, bucketChalUser}, {&b.chalExp, bucketChalExp},
		{&b.cred, bucketCred}, {&b.credUser, bucketCredUser},
		{&b.flows, bucketFlows}, {&b.flowExp, bucketFlowExp},
		{&b.cer, bucketCer}, {&b.cerExp, bucketCerExp},
		{&b.audit, bucketAudit}, {&b.auditUser, bucketAuditUser}, {&b.auditActor, bucketAuditActor},
		{&b.auditType, bucketAuditType}, {&b.auditIrreg, bucketAuditIrreg},
	} {
		if len(only) > 0 && !slices.ContainsFunc(only, func(n []byte) bool { return bytes.Equal(n, x.name) }) {
			continue
		}
		if *x.p = tx.Bucket(x.name); *x.p == nil {
			return nil, fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, x.name)
		}
	}
	if !tx.Writable() {
		return &b, nil
	}
	// Keys that mostly grow (ULIDs, expiry times, IDs within one of the few
	// (role, status) ranges) are appended at the end of their range: pages
	// split there fill up instead of stopping at bbolt's default of half full.
	// This halves the size of those buckets. Buckets keyed by hashes or emails,
	// and the account filter index (ranges for every account, so inserts land
	// all over the bucket), keep the default.
	for _, bk := range []*bbolt.Bucket{b.users, b.filter, b.sessExp, b.tokExp, b.loginExp, b.audit, b.chalExp, b.flowExp, b.cerExp} {
		bk.FillPercent = appendFillPercent
	}
	return &b, nil
}

// appendFillPercent is the bbolt FillPercent of buckets whose keys are mostly
// appended.
const appendFillPercent = 0.95

// userBuckets are the buckets ListUsers and CountUsers read.
var userBuckets = [][]byte{bucketUsers, bucketEmail, bucketUsername, bucketFilter, bucketFilterAcct, bucketActive, bucketCount, bucketSearch}

// present is the value of index entries whose key says it all.

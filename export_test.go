package users

import "go.etcd.io/bbolt"

// SetCompareHook installs f to be called once for every bcrypt comparison m
// runs, so tests can count them. Call it before m is used.
func SetCompareHook(m *Manager, f func()) { m.onCompare = f }

// HashPrefix is the marker of this package's password-hash format.
const HashPrefix = hashPrefix

// NormalizePassword is the package's password normalisation (NFKC and the form
// and length checks, with min as the minimum length): the form a password is
// hashed and compared in, or the *ValidationError on "password" that refuses it.
func NormalizePassword(pw string, min int) (string, error) {
	return normalizePassword("password", pw, min)
}

// SetBoltSoloWrites turns s's group commit off (on) or back on (off), for the
// benchmark that compares the two. Call it before s is used.
func SetBoltSoloWrites(s *BoltStore, on bool) { s.soloWrites = on }

// SetBoltRebuildBatch sets how many records a schema rebuild handles per
// transaction, and returns a function that restores it.
func SetBoltRebuildBatch(n int) (restore func()) {
	old := boltRebuildBatch
	boltRebuildBatch = n
	return func() { boltRebuildBatch = old }
}

// BoltRebuildSteps starts the schema rebuild of db if its version is older than
// this code's, and runs at most max of its steps (one transaction each), as an
// open interrupted by a crash would. It returns how many steps ran that did not
// finish the rebuild.
func BoltRebuildSteps(db *bbolt.DB, max int) (int, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(rootBucket)
		if err != nil {
			return err
		}
		if v, err := schemaVersion(root); err != nil || v >= boltSchemaVersion {
			return err
		}
		return startRebuild(tx, root)
	})
	steps := 0
	for done := false; err == nil && !done && steps < max; {
		err = db.Update(func(tx *bbolt.Tx) (err error) {
			done, err = rebuildStep(tx, boltRebuildBatch)
			return err
		})
		if !done {
			steps++
		}
	}
	return steps, err
}

// SetBoltActivityPath makes s's listings by activity take one way: "filter"
// (walk the filter ranges only), "range" (collect the time range first) or ""
// (both in step, the default). Set it before s is used.
func SetBoltActivityPath(s *BoltStore, path string) {
	s.activityPath = map[string]int{"": activityBoth, "filter": activityFilterWalk, "range": activityRangeFirst}[path]
}

// DecodeBoltChallenge and EncodeBoltChallenge are the bbolt store's challenge
// record format, for tests that build or damage a file under the store.
func DecodeBoltChallenge(key, v []byte) (*ChallengeRecord, error) { return decodeChallenge(key, v) }

func EncodeBoltChallenge(c *ChallengeRecord) []byte { return encodeChallenge(c) }

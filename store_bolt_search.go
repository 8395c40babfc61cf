package users

// PLACEHOLDER. The real search index for the bbolt store is written on branch
// scale-search and replaces this file at merge. Until then the index holds
// nothing and every search scans; the names and signatures below are the
// interface store_bolt*.go calls, and must not change.

import "go.etcd.io/bbolt"

// bucketSearch is the search index's bucket under the root bucket.
var bucketSearch = []byte("users.search")

// indexSearch updates the search index for one user: old is the user as it was
// (nil when created), new as it is now (nil when deleted). b is the bucketSearch
// bucket.
func indexSearch(b *bbolt.Bucket, id string, old, new *User) error { return nil }

// indexSearchNew adds many newly created users at once (CreateUsers, rebuilds),
// which can be much cheaper than calling indexSearch for each.
// len(ids) == len(us).
func indexSearchNew(b *bbolt.Bucket, ids []string, us []*User) error { return nil }

// searchCandidates returns, in ascending ID order, the IDs of every user whose
// SearchFields may contain term (a superset: the caller checks each with
// Match.Matches). indexed is false when the index cannot narrow this term: the
// caller then scans. term is lower-case. The placeholder never narrows.
func searchCandidates(b *bbolt.Bucket, term string) (ids []string, indexed bool, err error) {
	return nil, false, nil
}

// checkSearchIndex reports (as error strings, empty if sound) where the search
// index disagrees with the users, which it reads with each(yield) giving every
// user. The placeholder has nothing to disagree.
func checkSearchIndex(b *bbolt.Bucket, each func(yield func(id string, u *User) bool) error) ([]string, error) {
	return nil, nil
}

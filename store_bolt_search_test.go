package users

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users/internal/trigram"
	"go.etcd.io/bbolt"
)

// These tests drive the search index's four functions on a bucket of their own,
// apart from the rest of the bolt store.

// searchDB opens a bbolt file in tb.TempDir with an empty bucketSearch.
func searchDB(tb testing.TB) *bbolt.DB {
	tb.Helper()
	db, err := bbolt.Open(filepath.Join(tb.TempDir(), "search.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucketSearch)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return db
}

// searchUpdate runs fn on bucketSearch in a writable transaction.
func searchUpdate(tb testing.TB, db *bbolt.DB, fn func(b *bbolt.Bucket) error) {
	tb.Helper()
	if err := db.Update(func(tx *bbolt.Tx) error { return fn(tx.Bucket(bucketSearch)) }); err != nil {
		tb.Fatal(err)
	}
}

// searchTruth is what the index should agree with: the users by ID.
type searchTruth map[string]*User

func (m searchTruth) each(yield func(id string, u *User) bool) error {
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range m {
			if !yield(id) {
				return
			}
		}
	}) {
		if !yield(id, m[id]) {
			break
		}
	}
	return nil
}

// check fails tb unless checkSearchIndex finds the index sound.
func (m searchTruth) check(tb testing.TB, db *bbolt.DB) {
	tb.Helper()
	if problems := m.problems(tb, db); len(problems) > 0 {
		tb.Fatalf("checkSearchIndex:\n%s", strings.Join(problems, "\n"))
	}
}

func (m searchTruth) problems(tb testing.TB, db *bbolt.DB) []string {
	tb.Helper()
	var problems []string
	if err := db.View(func(tx *bbolt.Tx) error {
		var err error
		problems, err = checkSearchIndex(tx.Bucket(bucketSearch), m.each)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return problems
}

// candidates returns searchCandidates(term).
func candidates(tb testing.TB, db *bbolt.DB, term string) (ids []string, indexed bool) {
	tb.Helper()
	if err := db.View(func(tx *bbolt.Tx) error {
		var err error
		ids, indexed, err = searchCandidates(tx.Bucket(bucketSearch), term)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return ids, indexed
}

// Names with multi-byte letters, spaces and hyphens, from an alphabet small
// enough that trigrams are shared by many users and their lists split.
var (
	searchFirst = []string{"Ann", "Anna", "Jo", "José", "Zoë", "Łukasz", "Søren", "美咲", "Mary Ann", "", "Al", "Ünal", "Jean-Luc", "Lee"}
	searchLast  = []string{"Doe", "Smith", "Smithers", "Müller", "García López", "O'Neil", "", "Ng", "Nakamura", "Øster", "Do"}
	searchMail  = []string{"example.com", "mail.test", "ex.org"}
)

func randomSearchUser(r *rand.Rand) *User {
	first, last := searchFirst[r.IntN(len(searchFirst))], searchLast[r.IntN(len(searchLast))]
	u := &User{
		FirstName: first,
		LastName:  last,
		Email:     fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), r.IntN(300), searchMail[r.IntN(len(searchMail))]),
	}
	if r.IntN(3) == 0 {
		u.Username = fmt.Sprintf("u%s%d", strings.ToLower(last), r.IntN(50))
	}
	return u
}

// randomSearchID returns an ID that usually comes after the ones before it (a
// ULID made now) but also one from the past, a lower-case ULID and a non-ULID.
func randomSearchID(r *rand.Rand, t *time.Time) string {
	*t = t.Add(time.Duration(r.IntN(3)) * time.Millisecond)
	switch r.IntN(10) {
	case 0:
		return fmt.Sprintf("user-%d", r.Int())
	case 1:
		return strings.ToLower(ulid.MustNew(ulid.Timestamp(t.Add(-time.Hour)), randReader{r}).String())
	case 2:
		return ulid.MustNew(ulid.Timestamp(t.Add(-time.Duration(r.IntN(1e6))*time.Millisecond)), randReader{r}).String()
	}
	return ulid.MustNew(ulid.Timestamp(*t), randReader{r}).String()
}

// randReader reads random bytes from a seeded generator.
type randReader struct{ r *rand.Rand }

func (r randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

// randomTerm returns a term to search for: usually a piece of some user's
// fields (which may span the space in "first last"), sometimes random bytes.
func randomTerm(r *rand.Rand, truth searchTruth, ids []string) string {
	if len(ids) == 0 || r.IntN(8) == 0 {
		b := make([]byte, 1+r.IntN(5))
		for i := range b {
			b[i] = "abdeo .@1ü"[r.IntN(10)]
		}
		return string(b)
	}
	fields := SearchFields(truth[ids[r.IntN(len(ids))]])
	if len(fields) == 0 {
		return "smi"
	}
	f := fields[r.IntN(len(fields))]
	i := r.IntN(len(f))
	j := min(len(f), i+1+r.IntN(9))
	return f[i:j]
}

func TestSearchIndex_MatchesBruteForce(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	db := searchDB(t)
	truth := searchTruth{}
	var ids []string
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	for round := range 20 {
		searchUpdate(t, db, func(b *bbolt.Bucket) error {
			// A batch of new users, as CreateUsers and rebuilds add them.
			var newIDs []string
			var newUsers []*User
			for range r.IntN(200) {
				id := randomSearchID(r, &now)
				if truth[id] != nil || slices.Contains(newIDs, id) {
					continue
				}
				newIDs, newUsers = append(newIDs, id), append(newUsers, randomSearchUser(r))
			}
			if err := indexSearchNew(b, newIDs, newUsers); err != nil {
				return err
			}
			for i, id := range newIDs {
				truth[id] = newUsers[i]
				ids = append(ids, id)
			}
			// One at a time: creates, updates of any search field, deletes.
			for range 40 {
				switch op := r.IntN(4); {
				case op == 0 || len(ids) == 0:
					id, u := randomSearchID(r, &now), randomSearchUser(r)
					if truth[id] != nil {
						continue
					}
					if err := indexSearch(b, id, nil, u); err != nil {
						return err
					}
					truth[id] = u
					ids = append(ids, id)
				case op == 1:
					i := r.IntN(len(ids))
					if err := indexSearch(b, ids[i], truth[ids[i]], nil); err != nil {
						return err
					}
					delete(truth, ids[i])
					ids = slices.Delete(ids, i, i+1)
				default:
					id := ids[r.IntN(len(ids))]
					u := truth[id].Clone()
					other := randomSearchUser(r)
					switch r.IntN(4) {
					case 0:
						u.FirstName = other.FirstName
					case 1:
						u.LastName = other.LastName
					case 2:
						u.Email = other.Email
					case 3:
						u.Username = other.Username
					}
					if err := indexSearch(b, id, truth[id], u); err != nil {
						return err
					}
					truth[id] = u
				}
			}
			return nil
		})

		for range 50 {
			term := randomTerm(r, truth, ids)
			got, indexed := candidates(t, db, term)
			var want []string
			for id, u := range truth {
				if (&Match{Search: term}).Matches(u) {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			if len(term) < 3 {
				if indexed {
					t.Fatalf("round %d: term %q of %d bytes: indexed, want a scan", round, term, len(term))
				}
				continue
			}
			if !indexed {
				t.Fatalf("round %d: term %q: not indexed", round, term)
			}
			if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Fatalf("round %d: term %q: candidates %q are not increasing", round, term, got)
			}
			var matched []string
			for _, id := range got {
				u, ok := truth[id]
				if !ok {
					t.Fatalf("round %d: term %q: candidate %s is no user", round, term, id)
				}
				if (&Match{Search: term}).Matches(u) {
					matched = append(matched, id)
				}
			}
			if !slices.Equal(matched, want) {
				t.Fatalf("round %d: term %q: candidates that match are %q, want %q", round, term, matched, want)
			}
		}
		truth.check(t, db)
	}

	// The alphabet is small, so the lists grew past one chunk, and users were
	// added out of ID order: the test went through splits and middle chunks.
	if err := db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketSearch).Bucket(searchGrams).Stats().KeyN; n < 30 {
			t.Errorf("only %d chunks left the tails; the test does not split lists", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSearchCandidates(t *testing.T) {
	db := searchDB(t)
	ann := &User{Email: "ann@example.com", FirstName: "Ann", LastName: "Doe"}
	bob := &User{Email: "bob@example.com", Username: "bobby", FirstName: "Bob", LastName: "Ann-Marie"}
	annID, bobID := "01KB0000000000000000000001", "01KB0000000000000000000002"
	searchUpdate(t, db, func(b *bbolt.Bucket) error {
		// Bob first: the order users are added in does not matter.
		return indexSearchNew(b, []string{bobID, annID}, []*User{bob, ann})
	})
	for _, tc := range []struct {
		term string
		want []string
	}{
		{"ann", []string{annID, bobID}},
		{"ann doe", []string{annID}}, // across the space of "first last"
		{"n d", []string{annID}},
		{"bobby", []string{bobID}},
		{"@example.com", []string{annID, bobID}},
		{"zzz", nil},
	} {
		got, indexed := candidates(t, db, tc.term)
		if !indexed || !slices.Equal(got, tc.want) {
			t.Errorf("searchCandidates(%q) = %q, %v; want %q, true", tc.term, got, indexed, tc.want)
		}
	}
	for _, term := range []string{"", "a", "an"} {
		if got, indexed := candidates(t, db, term); indexed || got != nil {
			t.Errorf("searchCandidates(%q) = %q, %v; want nil, false (too short to narrow)", term, got, indexed)
		}
	}
	// An empty bucket, as a new store has, finds nobody.
	if got, indexed := candidates(t, searchDB(t), "ann"); !indexed || got != nil {
		t.Errorf("searchCandidates on an empty index = %q, %v; want nil, true", got, indexed)
	}
}

func TestIndexSearchNew_Refuses(t *testing.T) {
	db := searchDB(t)
	u := &User{Email: "ann@example.com"}
	searchUpdate(t, db, func(b *bbolt.Bucket) error { return indexSearchNew(b, []string{"a"}, []*User{u}) })
	for name, ids := range map[string][]string{
		"already indexed":   {"a"},
		"twice in a batch":  {"b", "b"},
		"lengths that vary": {"c", "d", "e"},
	} {
		err := db.Update(func(tx *bbolt.Tx) error {
			return indexSearchNew(tx.Bucket(bucketSearch), ids, []*User{u, u})
		})
		if err == nil {
			t.Errorf("%s: indexSearchNew(%q) succeeded", name, ids)
		}
	}
	searchTruth{"a": u}.check(t, db)
}

// buildSearch indexes n random users in batches of size, one indexSearchNew
// for each, so that the first ones merged into the main lists and the last
// ones wait in pending segments. It returns the users and their IDs in order.
func buildSearch(t *testing.T, db *bbolt.DB, r *rand.Rand, n, size int) (searchTruth, []string) {
	truth := searchTruth{}
	var ids []string
	now := time.Now()
	for start := 0; start < n; start += size {
		var us []*User
		for len(us) < min(size, n-start) {
			id := randomSearchID(r, &now)
			if truth[id] != nil {
				continue
			}
			truth[id] = randomSearchUser(r)
			ids, us = append(ids, id), append(us, truth[id])
		}
		searchUpdate(t, db, func(b *bbolt.Bucket) error { return indexSearchNew(b, ids[start:], us) })
	}
	truth.check(t, db)
	return truth, ids
}

func TestIndexSearch_UpdateTouchesOnlyChangedTrigrams(t *testing.T) {
	db := searchDB(t)
	r := rand.New(rand.NewPCG(3, 4))
	truth, ids := buildSearch(t, db, r, 3000, 30)

	// snapshot returns every chunk of the index by bucket, trigram and key.
	snapshot := func() map[string]string {
		m := map[string]string{}
		if err := db.View(func(tx *bbolt.Tx) error {
			for _, name := range [][]byte{searchGrams, searchTails} {
				searchForEach(tx.Bucket(bucketSearch).Bucket(name), func(k, v []byte) {
					m[fmt.Sprintf("%s/%s/%x", name, k[:3], k)] = string(v)
				})
			}
			searchForEach(tx.Bucket(bucketSearch).Bucket(searchPend), func(k, v []byte) {
				if err := pendGroupEach(v, func(third byte, chunk []byte) bool {
					m[fmt.Sprintf("pend/%s%c/%x", k[8:], third, k)] = string(chunk)
					return true
				}); err != nil {
					t.Fatal(err)
				}
			})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if n := len(slices.Collect(func(yield func(string) bool) {
		for k := range snapshot() {
			if strings.HasPrefix(k, "pend/") && !yield(k) {
				return
			}
		}
	})); n == 0 {
		t.Fatal("no pending segments: the test does not update in one")
	}

	// A user merged into the main lists, then one in a pending segment.
	for _, id := range []string{ids[10], ids[len(ids)-10]} {
		old := truth[id]
		u := old.Clone()
		u.FirstName, u.LastName = "Quentin", old.LastName+"x"
		removed, added := diffTrigrams(searchTrigrams(old), searchTrigrams(u))
		changed := map[string]bool{}
		for _, g := range append(removed, added...) {
			changed[string(g.Key())] = true
		}
		before := snapshot()
		searchUpdate(t, db, func(b *bbolt.Bucket) error { return indexSearch(b, id, old, u) })
		truth[id] = u
		after := snapshot()
		n := 0
		for k := range searchKeysUnion(before, after) {
			if before[k] == after[k] {
				continue
			}
			n++
			if g := strings.Split(k, "/")[1]; !changed[g] {
				t.Errorf("chunk %q changed, but the update changes only trigrams %q", k, slices.Sorted(maps.Keys(changed)))
			}
		}
		if n == 0 {
			t.Errorf("updating user %s changed no chunk", id)
		}
		truth.check(t, db)

		// An update that changes no search field writes nothing.
		v := u.Clone()
		v.AvatarURL = "https://example.com/a.png"
		searchUpdate(t, db, func(b *bbolt.Bucket) error { return indexSearch(b, id, u, v) })
		if got := snapshot(); !searchMapsEqual(got, after) {
			t.Error("an update of no search field changed the index")
		}
		truth[id] = v
	}
}

func searchKeysUnion(a, b map[string]string) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func searchMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestIndexSearch_UnknownUser(t *testing.T) {
	db := searchDB(t)
	err := db.Update(func(tx *bbolt.Tx) error {
		return indexSearch(tx.Bucket(bucketSearch), "nobody", &User{Email: "a@example.com"}, nil)
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("indexSearch of a user never indexed: %v, want ErrCorrupt", err)
	}
}

func TestCheckSearchIndex(t *testing.T) {
	t.Parallel()
	// Each case damages an index of 3000 users that share trigrams, so that
	// lists span several chunks, built in batches that leave some of them
	// pending; mainID is a user in the main lists, pendID one in a pending
	// segment. The index is built once and each case gets a copy of its file
	// and of its truth, since building it is most of the work.
	tmplDB := searchDB(t)
	tmplTruth, ids := buildSearch(t, tmplDB, rand.New(rand.NewPCG(5, 6)), 3000, 30)
	mainID, pendID := ids[5], ids[len(ids)-5]
	var tmpl bytes.Buffer
	if err := tmplDB.View(func(tx *bbolt.Tx) error { _, err := tx.WriteTo(&tmpl); return err }); err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T) (*bbolt.DB, searchTruth) {
		path := filepath.Join(t.TempDir(), "search.db")
		if err := os.WriteFile(path, tmpl.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		truth := make(searchTruth, len(tmplTruth))
		for id, u := range tmplTruth {
			c := *u
			truth[id] = &c
		}
		return db, truth
	}
	docOf := func(b *bbolt.Bucket, id string) uint64 {
		d, _ := binary.Uvarint(b.Bucket(searchIDs).Get(packSearchID(id)))
		return d
	}
	// change adds id's doc to g's list, or takes it out.
	change := func(b *bbolt.Bucket, id string, g trigram.T, add bool) error {
		x, err := openSearch(b, true)
		if err != nil {
			return err
		}
		doc := docOf(b, id)
		seg, pending := x.segmentOf(doc)
		if pending != (id == pendID) {
			t.Fatalf("user %s pending: %v", id, pending)
		}
		return x.change(g, doc, seg, pending, add)
	}
	// aChunk returns the key of a grams chunk of "com" that is not its first.
	aChunk := func(b *bbolt.Bucket) []byte {
		c := b.Bucket(searchGrams).Cursor()
		c.Seek([]byte("com"))
		k, _ := c.Next()
		if !bytes.HasPrefix(k, []byte("com")) {
			t.Fatal("trigram \"com\" has one chunk only")
		}
		return bytes.Clone(k)
	}
	// aSegment returns the key of a group with a pending list of "com".
	aSegment := func(b *bbolt.Bucket) []byte {
		c := b.Bucket(searchPend).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if chunk, _ := pendGroupGet(v, 'm'); bytes.HasSuffix(k, []byte("co")) && chunk != nil {
				return bytes.Clone(k)
			}
		}
		t.Fatal("no pending list of \"com\"")
		return nil
	}
	// setPending replaces the pending list of "com" in group k by chunk.
	setPending := func(b *bbolt.Bucket, k, chunk []byte) error {
		v, err := pendGroupSet(b.Bucket(searchPend).Get(k), 'm', chunk)
		if err != nil {
			return err
		}
		return b.Bucket(searchPend).Put(k, v)
	}
	xyz := trigram.T('x')<<16 | trigram.T('y')<<8 | trigram.T('z')
	firstTrigram := func(truth searchTruth, id string) trigram.T { return searchTrigrams(truth[id])[0] }

	for _, tc := range []struct {
		name   string
		damage func(b *bbolt.Bucket, truth searchTruth) error
		want   func(truth searchTruth) string // in some problem
	}{{
		name: "missing posting",
		damage: func(b *bbolt.Bucket, truth searchTruth) error {
			return change(b, mainID, firstTrigram(truth, mainID), false)
		},
		want: func(truth searchTruth) string {
			return fmt.Sprintf("user %s is missing under trigram %v", mainID, firstTrigram(truth, mainID))
		},
	}, {
		name: "missing posting in a pending segment",
		damage: func(b *bbolt.Bucket, truth searchTruth) error {
			return change(b, pendID, firstTrigram(truth, pendID), false)
		},
		want: func(truth searchTruth) string {
			return fmt.Sprintf("user %s is missing under trigram %v", pendID, firstTrigram(truth, pendID))
		},
	}, {
		name:   "extra posting",
		damage: func(b *bbolt.Bucket, _ searchTruth) error { return change(b, mainID, xyz, true) },
		want: func(searchTruth) string {
			return fmt.Sprintf("trigram \"xyz\" lists user %s, whose fields do not hold it", mainID)
		},
	}, {
		name:   "extra posting in a pending segment",
		damage: func(b *bbolt.Bucket, _ searchTruth) error { return change(b, pendID, xyz, true) },
		want: func(searchTruth) string {
			return fmt.Sprintf("trigram \"xyz\" lists user %s, whose fields do not hold it", pendID)
		},
	}, {
		name: "deleted user",
		damage: func(_ *bbolt.Bucket, truth searchTruth) error {
			delete(truth, mainID) // the user goes; the index is not told
			return nil
		},
		want: func(searchTruth) string { return fmt.Sprintf("belongs to user %s, who does not exist", mainID) },
	}, {
		name: "posting for a deleted user whose doc is gone",
		damage: func(b *bbolt.Bucket, truth searchTruth) error {
			doc := docOf(b, pendID)
			delete(truth, pendID)
			if err := b.Bucket(searchIDs).Delete(packSearchID(pendID)); err != nil {
				return err
			}
			return b.Bucket(searchDocs).Delete(searchDocKey(doc))
		},
		want: func(searchTruth) string { return "which is no user's" },
	}, {
		name: "user not indexed",
		damage: func(_ *bbolt.Bucket, truth searchTruth) error {
			truth["01KB0000000000000000000BOB"] = &User{Email: "bob@example.com"}
			return nil
		},
		want: func(searchTruth) string { return "user 01KB0000000000000000000BOB is not in the search index" },
	}, {
		name: "doc that maps to another ID",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchDocs).Put(searchDocKey(docOf(b, mainID)), packSearchID("someone-else"))
		},
		want: func(searchTruth) string { return fmt.Sprintf("user %s: search index doc", mainID) },
	}, {
		name: "malformed packed ID",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchDocs).Put(searchDocKey(docOf(b, mainID)), []byte("x"))
		},
		want: func(searchTruth) string { return "malformed packed ID" },
	}, {
		name: "chunk with a bad varint",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchGrams).Put(aChunk(b), []byte{0xff, 0xff})
		},
		want: func(searchTruth) string { return "bad varint" },
	}, {
		name: "chunk whose docs do not increase",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			k := aChunk(b)
			return b.Bucket(searchGrams).Put(k, append(bytes.Clone(b.Bucket(searchGrams).Get(k)), 0))
		},
		want: func(searchTruth) string { return "do not increase" },
	}, {
		name:   "empty chunk",
		damage: func(b *bbolt.Bucket, _ searchTruth) error { return b.Bucket(searchGrams).Put(aChunk(b), []byte{}) },
		want:   func(searchTruth) string { return "empty chunk" },
	}, {
		name: "chunk above its bound",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			k := aChunk(b)
			docs, err := decodeSearchChunk(nil, b.Bucket(searchGrams).Get(k))
			if err != nil {
				return err
			}
			return b.Bucket(searchGrams).Put(k, encodeSearchChunk(append(docs, binary.BigEndian.Uint64(k[3:])+1)))
		},
		want: func(searchTruth) string { return "outside (" },
	}, {
		name: "malformed chunk key",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchGrams).Put([]byte("comx"), encodeSearchChunk([]uint64{1}))
		},
		want: func(searchTruth) string { return "malformed chunk key" },
	}, {
		name: "tail not above the chunks",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchTails).Put([]byte("com"), encodeSearchChunk([]uint64{1}))
		},
		want: func(searchTruth) string { return "tail starts at doc 1" },
	}, {
		name: "pending list with a bad varint",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return setPending(b, aSegment(b), []byte{0x80})
		},
		want: func(searchTruth) string { return "bad varint" },
	}, {
		name: "pending list outside its segment",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			k := aSegment(b)
			return setPending(b, k, encodeSearchChunk([]uint64{binary.BigEndian.Uint64(k) - 1}))
		},
		want: func(searchTruth) string { return "outside [" },
	}, {
		name: "pending list of an unlisted segment",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchSegs).Delete(aSegment(b)[:8])
		},
		want: func(searchTruth) string { return "which is not listed" },
	}, {
		name: "malformed segment key",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchPend).Put([]byte("com"), encodeSearchChunk([]uint64{1}))
		},
		want: func(searchTruth) string { return "malformed segment key" },
	}, {
		name: "malformed group",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			return b.Bucket(searchPend).Put(aSegment(b), []byte{'m', 5, 1})
		},
		want: func(searchTruth) string { return "malformed group" },
	}, {
		name: "group out of order",
		damage: func(b *bbolt.Bucket, _ searchTruth) error {
			v := appendPendEntry(appendPendEntry(nil, 'm', []byte{1}), 'a', []byte{2})
			return b.Bucket(searchPend).Put(aSegment(b), v)
		},
		want: func(searchTruth) string { return "group's trigrams do not increase" },
	}, {
		name:   "next doc already given",
		damage: func(b *bbolt.Bucket, _ searchTruth) error { return b.Put(searchNext, searchDocKey(2)) },
		want:   func(searchTruth) string { return "but the next doc is 2" },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			db, truth := build(t)
			searchUpdate(t, db, func(b *bbolt.Bucket) error { return tc.damage(b, truth) })
			problems := truth.problems(t, db)
			if want := tc.want(truth); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
				t.Errorf("problems do not say %q:\n%s", want, strings.Join(problems, "\n"))
			}
		})
	}
}

func TestSearchIDPacking(t *testing.T) {
	for _, id := range []string{
		"01KB0000000000000000000001", // a ULID: 16 bytes
		"01kb0000000000000000000001", // not canonical: kept as it is
		"8ZZZZZZZZZZZZZZZZZZZZZZZZZ", // overflows a ULID
		"user-1", "u", "ü",
	} {
		p := packSearchID(id)
		if got, err := unpackSearchID(p); err != nil || got != id {
			t.Errorf("unpackSearchID(packSearchID(%q)) = %q, %v", id, got, err)
		}
		if id == "01KB0000000000000000000001" && len(p) != 17 {
			t.Errorf("packSearchID(%q) takes %d bytes, want 17", id, len(p))
		}
	}
}

// Benchmarks. Run them with
//
//	go test -run '^$' -bench 'BoltSearch' -benchtime 1x .   (imports once)
//	go test -run '^$' -bench 'BoltSearch$' .                (search only)
//
// BenchmarkBoltSearch at 10k and 1M gives the ratio of a rare-term search;
// BenchmarkBoltSearchImport gives the time and file size of importing the same
// users with and without the index.

// benchUser returns synthetic user i of n: common first names (some not ASCII),
// surnames built from syllables, emails from both, a username for every third.
// Twenty users of any n have the rare surname Zbigniewska.
func benchUser(i, n int) (string, *User) {
	first := []string{"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
		"William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
		"Sarah", "Charles", "Karen", "José", "María", "Zoë", "Søren", "Łukasz", "Ünal", "Chloé", "Björn",
		"Anna", "Ahmed", "Wei", "Yuki", "Olga", "Priya", "Omar", "Fatima", "Lucas", "Emma", "Noah", "Mia"}
	syl := []string{"and", "ber", "car", "del", "fer", "gar", "har", "ken", "lin", "mor", "nel", "per",
		"ros", "san", "ter", "val", "wil", "son", "man", "ez", "ov", "ski", "ton", "ley", "ner", "ell",
		"ida", "ura", "ama", "ott", "ber", "ich", "ang", "ong", "ash", "ist", "ard", "ers", "ham", "lund"}
	mails := []string{"example.com", "mail.example.org", "corp.test", "uni.example.edu", "web.example.net"}
	r := uint64(i)*0x9e3779b97f4a7c15 + 1
	r ^= r >> 29
	pick := func(n int) int { r = r*6364136223846793005 + 1442695040888963407; return int(r>>33) % n }
	u := &User{FirstName: first[pick(len(first))]}
	u.LastName = strings.ToUpper(syl[pick(len(syl))][:1]) + syl[pick(len(syl))][1:] + syl[pick(len(syl))]
	if i%(n/20) == 7 {
		u.LastName = "Zbigniewska"
	}
	u.Email = fmt.Sprintf("%s.%s%d@%s", strings.ToLower(u.FirstName), strings.ToLower(u.LastName), pick(1000), mails[pick(len(mails))])
	if i%3 == 0 {
		u.Username = fmt.Sprintf("%s%d", strings.ToLower(u.LastName), pick(100))
	}
	// IDs as a busy import makes them: a few per millisecond, random within it.
	t := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/4) * time.Millisecond)
	var entropy [10]byte
	binary.BigEndian.PutUint64(entropy[:8], r)
	id := ulid.MustNew(ulid.Timestamp(t), bytes.NewReader(entropy[:]))
	return id.String(), u
}

// buildBenchDB writes n synthetic users, JSON-encoded under their ID in bucket
// "users", into a new file in dir, 1000 users to a transaction, and when indexed
// is set adds them to the search index with indexSearchNew in the same
// transactions. It returns the open database and the time spent in
// indexSearchNew, which leaves out the commits: they write the index's pages
// along with the records' (compare whole imports with and without the index).
func buildBenchDB(tb testing.TB, dir string, n int, indexed bool) (*bbolt.DB, time.Duration) {
	tb.Helper()
	db, err := bbolt.Open(filepath.Join(dir, fmt.Sprintf("bench-%d-%v.db", n, indexed)), 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var took time.Duration
	for start := 0; start < n; start += 1000 {
		err := db.Update(func(tx *bbolt.Tx) error {
			ub, err := tx.CreateBucketIfNotExists([]byte("users"))
			if err != nil {
				return err
			}
			ub.FillPercent = 0.9
			sb, err := tx.CreateBucketIfNotExists(bucketSearch)
			if err != nil {
				return err
			}
			var ids []string
			var us []*User
			for i := start; i < min(n, start+1000); i++ {
				id, u := benchUser(i, n)
				u.ID = id
				v, err := json.Marshal(u)
				if err != nil {
					return err
				}
				if err := ub.Put([]byte(id), v); err != nil {
					return err
				}
				ids, us = append(ids, id), append(us, u)
			}
			if indexed {
				t0 := time.Now()
				defer func() { took += time.Since(t0) }() // the commit that writes it is not counted
				return indexSearchNew(sb, ids, us)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return db, took
}

var benchSizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"1M", 1_000_000}}

func BenchmarkBoltSearch(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			db, _ := buildBenchDB(b, b.TempDir(), size.n, true)
			defer db.Close()
			m := &Match{Search: "zbigniew"}
			b.ResetTimer()
			var found int
			for b.Loop() {
				found = 0
				err := db.View(func(tx *bbolt.Tx) error {
					ids, indexed, err := searchCandidates(tx.Bucket(bucketSearch), m.Search)
					if err != nil || !indexed {
						return fmt.Errorf("searchCandidates: %v, indexed %v", err, indexed)
					}
					ub := tx.Bucket([]byte("users"))
					for _, id := range ids {
						var u User
						if err := json.Unmarshal(ub.Get([]byte(id)), &u); err != nil {
							return err
						}
						if m.Matches(&u) {
							found++
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if found != 20 {
				b.Fatalf("found %d users, want 20", found)
			}
		})
	}
}

func BenchmarkBoltSearchImport(b *testing.B) {
	for _, size := range benchSizes {
		for _, indexed := range []bool{false, true} {
			name := size.name + "/records"
			if indexed {
				name = size.name + "/indexed"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					db, took := buildBenchDB(b, b.TempDir(), size.n, indexed)
					fi, err := os.Stat(db.Path())
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(fi.Size())/float64(size.n), "file-B/user")
					b.ReportMetric(took.Seconds(), "index-s")
					db.Close()
				}
			})
		}
	}
}

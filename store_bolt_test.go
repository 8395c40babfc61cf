package users_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// boltT0 is the fixed time the bolt tests build their records around.
var boltT0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

// mustOpenBolt opens a store in a new file under tb.TempDir. When the test ends
// it closes the store (if the test did not), reopens the file and fails the test
// unless Check finds it consistent.
func mustOpenBolt(tb testing.TB, opts *users.BoltOptions) (*users.BoltStore, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "users.db")
	s, err := users.OpenBoltStore(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		boltCheckFile(tb, path)
	})
	return s, path
}

// boltCheckFile opens the store file at path and fails tb unless Check finds it
// consistent.
func boltCheckFile(tb testing.TB, path string) {
	tb.Helper()
	s, err := users.OpenBoltStore(path, nil)
	if err != nil {
		tb.Errorf("reopening %s: %v", path, err)
		return
	}
	defer s.Close()
	// Called from Cleanup, after tb.Context is canceled.
	if err := s.Check(context.Background()); err != nil {
		tb.Errorf("Check: %v", err)
	}
}

// boltUser returns a user record numbered i.
func boltUser(i int) *users.UserRecord {
	id := fmt.Sprintf("01BOLT%020d", i)
	return &users.UserRecord{
		User: users.User{
			ID:        id,
			Email:     fmt.Sprintf("user%06d@example.com", i),
			FirstName: "First",
			LastName:  fmt.Sprintf("Last%d", i),
			Role:      users.RoleUser,
			Status:    users.StatusActive,
			CreatedAt: boltT0,
			UpdatedAt: boltT0,
		},
		PasswordHash: "$test$not-a-real-hash",
	}
}

func boltHash(s string) []byte {
	h := make([]byte, 32)
	copy(h, s)
	return h
}

func boltSession(userID, id string, gen int64, expires time.Time) *users.SessionRecord {
	return &users.SessionRecord{
		ID: id, TokenHash: boltHash("s-" + id), UserID: userID, UserGeneration: gen,
		CreatedAt: boltT0, ExpiresAt: expires, LastSeenAt: boltT0,
	}
}

func boltToken(userID, name string, p users.Purpose, expires time.Time) *users.TokenRecord {
	return &users.TokenRecord{
		Hash: boltHash("t-" + name), UserID: userID, Purpose: p, Email: "x@example.com",
		CreatedAt: boltT0, ExpiresAt: expires,
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestBoltStore runs the Store conformance suite (contract and Manager scenarios)
// over BoltStore; every subtest
// gets a new file, which is reopened and checked when the subtest ends.
func TestBoltStore(t *testing.T) {
	t.Parallel()
	newStore := func(t *testing.T) users.Store {
		s, _ := mustOpenBolt(t, nil)
		return s
	}
	storetest.Run(t, newStore) // the contract, then the Manager-level scenarios
}

// boltSnapshot is everything a store holds about some users, read through the
// Store API, to compare a store before and after something happens to its file.
type boltSnapshot struct {
	Pages    [][]*users.UserRecord // ListUsers pages walked with After
	Back     [][]*users.UserRecord // ListUsers pages walked with Before
	Filtered []*users.UserRecord
	Count    int
	ByEmail  map[string]*users.UserRecord
	ByName   map[string]*users.UserRecord
	Sessions map[string][]*users.SessionRecord
	Tokens   []*users.TokenRecord
	Attempts map[string]users.LoginAttempts
}

func takeBoltSnapshot(tb testing.TB, s users.Store, tokens []*users.TokenRecord) *boltSnapshot {
	tb.Helper()
	ctx := tb.Context()
	snap := &boltSnapshot{
		ByEmail:  map[string]*users.UserRecord{},
		ByName:   map[string]*users.UserRecord{},
		Sessions: map[string][]*users.SessionRecord{},
		Attempts: map[string]users.LoginAttempts{},
	}
	for after := ""; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{After: after, Limit: 7})
		must(tb, err)
		if len(page) == 0 {
			break
		}
		snap.Pages = append(snap.Pages, page)
		after = page[len(page)-1].ID
	}
	for before := "\xff"; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{Before: before, Limit: 5})
		must(tb, err)
		if len(page) == 0 {
			break
		}
		snap.Back = append(snap.Back, page)
		before = page[0].ID
	}
	var err error
	snap.Filtered, err = s.ListUsers(ctx, users.ListQuery{Match: users.Match{Search: "last1"}, Offset: 1, Limit: 3})
	must(tb, err)
	snap.Count, err = s.CountUsers(ctx, users.Match{Role: users.RoleAdmin})
	must(tb, err)
	for _, page := range snap.Pages {
		for _, u := range page {
			r, err := s.GetUserByEmail(ctx, u.Email)
			must(tb, err)
			snap.ByEmail[u.Email] = r
			if u.Username != "" {
				r, err := s.GetUserByUsername(ctx, u.Username)
				must(tb, err)
				snap.ByName[u.Username] = r
			}
			ss, err := s.ListSessions(ctx, u.ID)
			must(tb, err)
			snap.Sessions[u.ID] = ss
			a, err := s.GetLoginAttempts(ctx, users.UserThrottleKey(u.ID))
			must(tb, err)
			snap.Attempts[u.ID] = a
		}
	}
	for _, t := range tokens {
		got, err := s.GetToken(ctx, t.Hash, t.Purpose)
		if errors.Is(err, users.ErrNotFound) {
			continue
		}
		must(tb, err)
		snap.Tokens = append(snap.Tokens, got)
	}
	return snap
}

// boltFill gives s some users, sessions, tokens and throttle entries, and changes
// and deletes some of them. It returns the tokens it created.
func boltFill(tb testing.TB, s users.Store) []*users.TokenRecord {
	tb.Helper()
	ctx := tb.Context()
	var tokens []*users.TokenRecord
	for i := range 40 {
		u := boltUser(i)
		if i%3 == 0 {
			u.Username = fmt.Sprintf("name%d", i)
		}
		if i%4 == 0 {
			u.Role = users.RoleAdmin
		}
		if i%5 == 0 {
			u.Preferences = map[string]string{"lang": "en"}
		}
		must(tb, s.CreateUser(ctx, u))
		for j := range i % 3 {
			sid := fmt.Sprintf("%s-s%d", u.ID, j)
			must(tb, s.CreateSession(ctx, boltSession(u.ID, sid, 0, boltT0.Add(time.Duration(i)*time.Hour))))
		}
		if i%2 == 0 {
			tok := boltToken(u.ID, u.ID, users.PurposeVerifyEmail, boltT0.Add(time.Hour))
			must(tb, s.CreateToken(ctx, tok, false))
			tokens = append(tokens, tok)
		}
		if i%7 == 0 {
			_, err := s.UpdateLoginAttempts(ctx, users.UserThrottleKey(u.ID), func(a *users.LoginAttempts) error {
				a.Failures = i
				a.WindowStart = boltT0
				a.ExpiresAt = boltT0.Add(time.Hour)
				return nil
			})
			must(tb, err)
		}
	}
	for i := 0; i < 40; i += 6 {
		_, err := s.UpdateUser(ctx, boltUser(i).ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.Email = fmt.Sprintf("changed%d@example.com", i)
			r.Username = ""
			r.FirstName = "Changed"
			return users.Revoke{Sessions: i%12 == 0}, nil
		})
		must(tb, err)
	}
	for i := 1; i < 40; i += 9 {
		must(tb, s.DeleteUser(ctx, boltUser(i).ID))
	}
	return tokens
}

// TestBoltStore_Reopen checks that users, indexes, sessions, tokens, throttle
// entries and the order and cursors of ListUsers survive Close and reopen.
func TestBoltStore_Reopen(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	tokens := boltFill(t, s)
	before := takeBoltSnapshot(t, s, tokens)
	if len(before.Pages) < 4 || len(before.Tokens) == 0 || len(before.Sessions) == 0 {
		t.Fatalf("fixture too small: %d pages, %d tokens", len(before.Pages), len(before.Tokens))
	}
	must(t, s.Close())

	s2, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer s2.Close()
	must(t, s2.Check(t.Context()))
	after := takeBoltSnapshot(t, s2, tokens)
	if !reflect.DeepEqual(before, after) {
		b, _ := json.MarshalIndent(before, "", " ")
		a, _ := json.MarshalIndent(after, "", " ")
		t.Fatalf("the store differs after reopening\nbefore: %s\nafter: %s", b, a)
	}
}

// TestBoltStore_RoundTripsEveryField fills every field of the records, by
// reflection so that fields added later are covered too, and reads them back.
func TestBoltStore_RoundTripsEveryField(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	ctx := t.Context()

	u := &users.UserRecord{}
	boltFillFields(t, reflect.ValueOf(u).Elem(), "u")
	u.Generation = 0
	sr := &users.SessionRecord{}
	boltFillFields(t, reflect.ValueOf(sr).Elem(), "s")
	sr.UserID, sr.UserGeneration = u.ID, 0
	tok := &users.TokenRecord{}
	boltFillFields(t, reflect.ValueOf(tok).Elem(), "t")
	tok.UserID = u.ID
	var a users.LoginAttempts
	boltFillFields(t, reflect.ValueOf(&a).Elem(), "a")

	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateSession(ctx, sr))
	must(t, s.CreateToken(ctx, tok, false))
	_, err := s.UpdateLoginAttempts(ctx, "k", func(x *users.LoginAttempts) error { *x = a; return nil })
	must(t, err)
	empty := boltUser(1) // an empty, non-nil Preferences map stays empty and non-nil
	empty.Preferences = map[string]string{}
	must(t, s.CreateUser(ctx, empty))
	e := &users.AuditEntry{}
	boltFillFields(t, reflect.ValueOf(e).Elem(), "e")
	must(t, s.AppendAudit(ctx, e))
	must(t, s.Close())

	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	defer s.Close()
	gotU, err := s.GetUser(ctx, u.ID)
	must(t, err)
	gotS, gotSU, err := getSession(ctx, s, sr.TokenHash)
	must(t, err)
	gotT, err := s.GetToken(ctx, tok.Hash, tok.Purpose)
	must(t, err)
	gotA, err := s.GetLoginAttempts(ctx, "k")
	must(t, err)
	gotEmpty, err := s.GetUser(ctx, empty.ID)
	must(t, err)
	gotE, err := s.ListAudit(ctx, users.AuditQuery{Limit: 2})
	must(t, err)
	if len(gotE) != 1 {
		t.Fatalf("ListAudit: %d entries, want 1", len(gotE))
	}
	for _, c := range []struct{ got, want any }{
		{gotU, u}, {gotSU, u}, {gotS, sr}, {gotT, tok}, {gotA, a}, {gotEmpty, empty}, {gotE[0], e},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("got %#v\nwant %#v", c.got, c.want)
		}
	}
}

// boltFillFields sets every field of v to a distinct non-zero value.
func boltFillFields(tb testing.TB, v reflect.Value, prefix string) {
	tb.Helper()
	timeType := reflect.TypeFor[time.Time]()
	for i := range v.NumField() {
		f, name := v.Field(i), prefix+"."+v.Type().Field(i).Name
		if !f.CanSet() {
			continue
		}
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(boltT0.Add(time.Duration(i+1) * time.Minute)))
		case f.Kind() == reflect.Struct:
			boltFillFields(tb, f, name)
		case f.Kind() == reflect.String:
			f.SetString(name)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			f.SetBytes(boltHash(name))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			sl := reflect.MakeSlice(f.Type(), 2, 2)
			sl.Index(0).SetString(name + ".0")
			sl.Index(1).SetString(name + ".1")
			f.Set(sl)
		case f.Kind() == reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.ValueOf("k").Convert(f.Type().Key()), reflect.ValueOf(name).Convert(f.Type().Elem()))
			f.Set(m)
		default:
			tb.Fatalf("boltFillFields: no value for %s of type %s", name, f.Type())
		}
	}
}

// TestBoltStore_InUse checks that opening a file that is already open fails
// within the timeout with ErrFileInUse, which also matches bbolt's ErrTimeout.
func TestBoltStore_InUse(t *testing.T) {
	if path := os.Getenv("USERS_BOLT_HOLD"); path != "" {
		boltHoldChild(path)
	}
	inUse := func(t *testing.T, err error, elapsed, limit time.Duration) {
		t.Helper()
		if !errors.Is(err, users.ErrFileInUse) || !errors.Is(err, bolterrors.ErrTimeout) {
			t.Fatalf("got %v, want an error matching ErrFileInUse and bbolt's ErrTimeout", err)
		}
		if elapsed > limit {
			t.Fatalf("failed after %v, want within %v", elapsed, limit)
		}
	}

	t.Run("SameProcess", func(t *testing.T) {
		s, path := mustOpenBolt(t, nil)
		start := time.Now()
		_, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 100 * time.Millisecond})
		inUse(t, err, time.Since(start), time.Second)
		if !strings.Contains(err.Error(), "in use") {
			t.Errorf("error %q does not say the file is in use", err)
		}

		start = time.Now()
		_, err = users.OpenBoltStore(path, nil) // the default timeout: about 1 s
		elapsed := time.Since(start)
		inUse(t, err, elapsed, 3*time.Second)
		if elapsed < 500*time.Millisecond {
			t.Errorf("default timeout gave up after %v, want about 1 s", elapsed)
		}

		must(t, s.Close())
		s2, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("after Close: %v", err)
		}
		must(t, s2.Close())
	})

	t.Run("OtherProcess", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestBoltStore_InUse$")
		cmd.Env = append(os.Environ(), "USERS_BOLT_HOLD="+path)
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		line, err := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			t.Fatalf("child said %q, %v", line, err)
		}

		start := time.Now()
		_, err = users.OpenBoltStore(path, &users.BoltOptions{Timeout: 200 * time.Millisecond})
		inUse(t, err, time.Since(start), time.Second)

		must(t, cmd.Process.Kill())
		_ = cmd.Wait()
		s, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("after the other process died: %v", err)
		}
		must(t, s.Close())
	})

	t.Run("NegativeTimeout", func(t *testing.T) {
		_, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "users.db"), &users.BoltOptions{Timeout: -1})
		if err == nil {
			t.Fatal("a negative Timeout was accepted")
		}
	})
}

// boltHoldChild opens the store at path, says so, and holds it until killed.
func boltHoldChild(path string) {
	s, err := users.OpenBoltStore(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	s.Close()
	os.Exit(0)
}

// boltRaw opens a bbolt file directly, for tests that build or damage a file
// under the store.
func boltRaw(tb testing.TB, path string) *bbolt.DB {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// boltBucket returns the store's bucket of the given name, as the layout
// of schema version 9 and older named it under userkit.users: "meta" is
// still there, "users" is the top-level "userkit.users.records", and every
// other is the top-level "userkit." + name.
func boltBucket(tx *bbolt.Tx, name string) *bbolt.Bucket {
	switch name {
	case "meta":
		return tx.Bucket([]byte("userkit.users")).Bucket([]byte(name))
	case "users":
		return tx.Bucket([]byte("userkit.users.records"))
	}
	return tx.Bucket([]byte("userkit." + name))
}

// boltSchemaVersion is the schema version this code writes.
const boltSchemaVersion = 10

func boltVersion(tb testing.TB, path string) uint64 {
	tb.Helper()
	db := boltRaw(tb, path)
	defer db.Close()
	var v uint64
	must(tb, db.View(func(tx *bbolt.Tx) error {
		b := boltBucket(tx, "meta")
		if b == nil {
			return errors.New("no meta bucket")
		}
		v = binary.BigEndian.Uint64(b.Get([]byte("version")))
		return nil
	}))
	return v
}

// TestBoltStore_SchemaTooNew checks that a file written by a newer schema is
// refused, by OpenBoltStore and NewBoltStore, and left as it was.
func TestBoltStore_SchemaTooNew(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	must(t, s.CreateUser(t.Context(), boltUser(1)))
	must(t, s.Close())
	db := boltRaw(t, path)
	must(t, db.Update(func(tx *bbolt.Tx) error {
		return boltBucket(tx, "meta").Put([]byte("version"), binary.BigEndian.AppendUint64(nil, boltSchemaVersion+1))
	}))

	_, err := users.NewBoltStore(db)
	if !errors.Is(err, users.ErrSchemaTooNew) {
		t.Errorf("NewBoltStore: got %v, want ErrSchemaTooNew", err)
	}
	must(t, db.Close())
	_, err = users.OpenBoltStore(path, nil)
	if !errors.Is(err, users.ErrSchemaTooNew) {
		t.Fatalf("OpenBoltStore: got %v, want ErrSchemaTooNew", err)
	}
	if v := boltVersion(t, path); v != boltSchemaVersion+1 {
		t.Fatalf("version is %d after the refused open, want %d still", v, boltSchemaVersion+1)
	}

	// Put the version back, so that the cleanup's Check passes.
	db = boltRaw(t, path)
	defer db.Close()
	must(t, db.Update(func(tx *bbolt.Tx) error {
		return boltBucket(tx, "meta").Put([]byte("version"), binary.BigEndian.AppendUint64(nil, boltSchemaVersion))
	}))
}

// TestBoltStore_MigrateV0 builds a version 0 file (records, no indexes, no
// version key) with bbolt directly and checks that opening migrates it.
func TestBoltStore_MigrateV0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	db := boltRaw(t, path)
	u := boltUser(1)
	u.Username = "alice"
	u.Generation = 3
	sess := boltSession(u.ID, "sess-1", 3, boltT0.Add(time.Hour))
	must(t, db.Update(func(tx *bbolt.Tx) error {
		app, err := tx.CreateBucket([]byte("app"))
		must(t, err)
		must(t, app.Put([]byte("k"), []byte("v")))
		root, err := tx.CreateBucket([]byte("userkit.users"))
		must(t, err)
		ub, err := root.CreateBucket([]byte("users"))
		must(t, err)
		v, err := json.Marshal(struct {
			users.User
			PasswordHash string `json:"password_hash"`
			Generation   int64  `json:"generation"`
		}{u.User, u.PasswordHash, u.Generation})
		must(t, err)
		must(t, ub.Put([]byte(u.ID), v))
		sb, err := root.CreateBucket([]byte("sessions"))
		must(t, err)
		v, err = json.Marshal(sess)
		must(t, err)
		return sb.Put(sess.TokenHash, v)
	}))
	must(t, db.Close())

	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	ctx := t.Context()
	must(t, s.Check(ctx))
	for _, get := range []func() (*users.UserRecord, error){
		func() (*users.UserRecord, error) { return s.GetUserByEmail(ctx, u.Email) },
		func() (*users.UserRecord, error) { return s.GetUserByUsername(ctx, "alice") },
		func() (*users.UserRecord, error) { return s.GetUser(ctx, u.ID) },
	} {
		got, err := get()
		must(t, err)
		if !reflect.DeepEqual(got, u) {
			t.Errorf("got %#v, want %#v", got, u)
		}
	}
	ss, err := s.ListSessions(ctx, u.ID)
	must(t, err)
	if len(ss) != 1 || !reflect.DeepEqual(ss[0], sess) {
		t.Errorf("ListSessions = %v, want the session", ss)
	}
	if n, err := s.DeleteExpired(ctx, boltT0.Add(2*time.Hour)); n != 1 || err != nil {
		t.Errorf("DeleteExpired = %d, %v; want 1 (the expiry index was built)", n, err)
	}
	must(t, s.Close())
	if v := boltVersion(t, path); v != boltSchemaVersion {
		t.Errorf("version = %d after migration, want %d", v, boltSchemaVersion)
	}
	db = boltRaw(t, path)
	defer db.Close()
	must(t, db.View(func(tx *bbolt.Tx) error {
		if got := string(tx.Bucket([]byte("app")).Get([]byte("k"))); got != "v" {
			t.Errorf("the program's own bucket holds %q, want v", got)
		}
		return nil
	}))
}

// TestBoltStore_Sweeper checks that the sweeper deletes what expired by its
// clock, and that Close stops it.
func TestBoltStore_Sweeper(t *testing.T) {
	var calls atomic.Int64
	s, _ := mustOpenBolt(t, &users.BoltOptions{
		SweepInterval: 5 * time.Millisecond,
		Now: func() time.Time {
			calls.Add(1)
			return boltT0.Add(time.Hour)
		},
	})
	ctx := t.Context()
	u := boltUser(1)
	must(t, s.CreateUser(ctx, u))
	old := boltSession(u.ID, "old", 0, boltT0)
	fresh := boltSession(u.ID, "fresh", 0, boltT0.Add(2*time.Hour))
	must(t, s.CreateSession(ctx, old))
	must(t, s.CreateSession(ctx, fresh))

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := getSession(ctx, s, old.TokenHash)
		if errors.Is(err, users.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired session is still there after 10 s (%d sweeps): %v", calls.Load(), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := getSession(ctx, s, fresh.TokenHash); err != nil {
		t.Fatalf("the sweeper deleted an unexpired session: %v", err)
	}

	must(t, s.Close())
	n := calls.Load()
	time.Sleep(50 * time.Millisecond)
	if got := calls.Load(); got != n {
		t.Fatalf("the sweeper ran %d more times after Close", got-n)
	}
	if _, err := s.GetUser(ctx, u.ID); err == nil {
		t.Fatal("GetUser after Close succeeded")
	}

	_, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "x.db"), &users.BoltOptions{SweepInterval: -1})
	if err == nil {
		t.Fatal("a negative SweepInterval was accepted")
	}
}

// TestBoltStore_NewBoltStoreSharedFile checks that the store leaves the program's
// own buckets alone and that Close leaves the program's database open.
func TestBoltStore_NewBoltStoreSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := boltRaw(t, path)
	defer db.Close()
	must(t, db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("app"))
		if err != nil {
			return err
		}
		return b.Put([]byte("config"), []byte("keep me"))
	}))

	ctx := t.Context()
	s, err := users.NewBoltStore(db)
	must(t, err)
	boltFill(t, s)
	must(t, s.Check(ctx))
	must(t, s.Close())
	if _, err := s.GetUser(ctx, boltUser(0).ID); err == nil {
		t.Error("GetUser after Close succeeded")
	}

	// The database is still open and the program's bucket untouched.
	must(t, db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("app"))
		if got := string(b.Get([]byte("config"))); got != "keep me" {
			t.Errorf("app/config = %q, want %q", got, "keep me")
		}
		return b.Put([]byte("more"), []byte("ok"))
	}))
	var top []string
	must(t, db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			top = append(top, string(name))
			return nil
		})
	}))
	if len(top) < 2 || top[0] != "app" {
		t.Errorf("top-level buckets = %q, want the program's app among the store's", top)
	}
	for _, name := range top[1:] {
		if !strings.HasPrefix(name, "userkit.") {
			t.Errorf("top-level bucket %q: the store's names all start with userkit.", name)
		}
	}

	// A second store over the same database sees the data.
	s2, err := users.NewBoltStore(db)
	must(t, err)
	if _, err := s2.GetUserByEmail(ctx, boltUser(2).Email); err != nil {
		t.Errorf("second store: %v", err)
	}
	must(t, s2.Check(ctx))
	must(t, s2.Close())

	t.Run("RefusesNoSync", func(t *testing.T) {
		db.NoSync = true
		defer func() { db.NoSync = false }()
		if _, err := users.NewBoltStore(db); err == nil {
			t.Fatal("NewBoltStore accepted a database with NoSync set")
		}
	})
	t.Run("RefusesReadOnly", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "ro.db")
		boltRaw(t, p).Close()
		ro, err := bbolt.Open(p, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		must(t, err)
		defer ro.Close()
		if _, err := users.NewBoltStore(ro); err == nil {
			t.Fatal("NewBoltStore accepted a read-only database")
		}
	})
}

// TestBoltStore_OneTransaction checks that every method that changes data does
// so in exactly one bbolt write transaction, and that reads and refused writes
// commit none: bbolt gives each committed write transaction the next ID.
func TestBoltStore_OneTransaction(t *testing.T) {
	db := boltRaw(t, filepath.Join(t.TempDir(), "users.db"))
	defer db.Close()
	s, err := users.NewBoltStore(db)
	must(t, err)
	defer s.Close()
	ctx := t.Context()
	txid := func() int {
		var id int
		must(t, db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }))
		return id
	}

	u, v := boltUser(1), boltUser(2)
	s1 := boltSession(u.ID, "s1", 0, boltT0)
	s2 := boltSession(u.ID, "s2", 0, boltT0.Add(time.Hour))
	s3 := boltSession(v.ID, "s3", 0, boltT0.Add(time.Hour))
	tok := boltToken(u.ID, "a", users.PurposePasswordReset, boltT0.Add(time.Hour))
	tok2 := boltToken(u.ID, "b", users.PurposePasswordReset, boltT0.Add(time.Hour))
	tok3 := boltToken(v.ID, "c", users.PurposeMagicLink, boltT0)
	incr := func(a *users.LoginAttempts) error {
		a.Failures++
		a.ExpiresAt = boltT0
		return nil
	}
	for _, c := range []struct {
		name   string
		writes int
		op     func() error
	}{
		{"CreateUser", 1, func() error { return s.CreateUser(ctx, u) }},
		{"CreateUser", 1, func() error { return s.CreateUser(ctx, v) }},
		{"CreateUser/Duplicate", 0, func() error { _ = s.CreateUser(ctx, u); return nil }},
		{"GetUser", 0, func() error { _, err := s.GetUser(ctx, u.ID); return err }},
		{"GetUserByEmail", 0, func() error { _, err := s.GetUserByEmail(ctx, u.Email); return err }},
		{"ListUsers", 0, func() error { _, err := s.ListUsers(ctx, users.ListQuery{Limit: 10}); return err }},
		{"CountUsers", 0, func() error { _, err := s.CountUsers(ctx, users.Match{}); return err }},
		{"CreateSession", 1, func() error { return s.CreateSession(ctx, s1) }},
		{"CreateSession", 1, func() error { return s.CreateSession(ctx, s2) }},
		{"CreateSession", 1, func() error { return s.CreateSession(ctx, s3) }},
		{"GetSession", 0, func() error { _, _, err := getSession(ctx, s, s1.TokenHash); return err }},
		{"ListSessions", 0, func() error { _, err := s.ListSessions(ctx, u.ID); return err }},
		{"TouchSession", 1, func() error { return s.TouchSession(ctx, s1.TokenHash, boltT0.Add(time.Minute)) }},
		{"TouchSession/NotLater", 0, func() error { return s.TouchSession(ctx, s1.TokenHash, boltT0) }},
		{"CreateToken", 1, func() error { return s.CreateToken(ctx, tok, false) }},
		{"CreateToken/Replace", 1, func() error { return s.CreateToken(ctx, tok2, true) }},
		{"CreateToken", 1, func() error { return s.CreateToken(ctx, tok3, false) }},
		{"GetToken", 0, func() error { _, err := s.GetToken(ctx, tok2.Hash, tok2.Purpose); return err }},
		{"UpdateLoginAttempts", 1, func() error { _, err := s.UpdateLoginAttempts(ctx, users.UserThrottleKey(u.ID), incr); return err }},
		{"UpdateLoginAttempts", 1, func() error { _, err := s.UpdateLoginAttempts(ctx, "id:x", incr); return err }},
		{"GetLoginAttempts", 0, func() error { _, err := s.GetLoginAttempts(ctx, "id:x"); return err }},
		{"UpdateUser/Revoke", 1, func() error {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.Email, r.Username = "new@example.com", "newname"
				return users.Revoke{Sessions: true, Tokens: users.Purposes()}, nil
			})
			return err
		}},
		{"UpdateUser/FnError", 0, func() error {
			_, _ = s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				return users.Revoke{}, errors.New("no")
			})
			return nil
		}},
		{"DeleteExpired", 1, func() error { _, err := s.DeleteExpired(ctx, boltT0); return err }},
		{"DeleteExpired/Nothing", 0, func() error { _, err := s.DeleteExpired(ctx, boltT0); return err }},
		{"CreateSession", 1, func() error { s1.UserGeneration = 1; return s.CreateSession(ctx, s1) }},
		{"CreateSession", 1, func() error { s2.UserGeneration = 1; return s.CreateSession(ctx, s2) }},
		{"DeleteSession", 1, func() error { return s.DeleteSession(ctx, s1.TokenHash) }},
		{"DeleteSessionByID", 1, func() error { return s.DeleteSessionByID(ctx, u.ID, s2.ID) }},
		{"DeleteUserSessions", 1, func() error { return s.DeleteUserSessions(ctx, v.ID) }},
		{"CreateToken", 1, func() error { return s.CreateToken(ctx, tok, false) }},
		{"ConsumeToken", 1, func() error { _, err := s.ConsumeToken(ctx, tok.Hash, tok.Purpose); return err }},
		{"ConsumeToken/NotFound", 0, func() error { _, _ = s.ConsumeToken(ctx, tok.Hash, tok.Purpose); return nil }},
		{"DeleteUser", 1, func() error { return s.DeleteUser(ctx, u.ID) }},
		{"Check", 0, func() error { return s.Check(ctx) }},
	} {
		before := txid()
		if err := c.op(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := txid() - before; got != c.writes {
			t.Errorf("%s committed %d write transactions, want %d", c.name, got, c.writes)
		}
	}
	if db.NoSync {
		t.Error("the store set NoSync")
	}
}

// TestBoltStore_CopiesOutOfTransactions reads values, closes the store (which
// unmaps the file) and then uses them: a value that still pointed into bbolt's
// memory map would crash the test.
func TestBoltStore_CopiesOutOfTransactions(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	tokens := boltFill(t, s)
	snap := takeBoltSnapshot(t, s, tokens)
	sr := snap.Sessions[boltUser(2).ID][0]
	gotS, gotU, err := getSession(ctx, s, sr.TokenHash)
	must(t, err)
	must(t, s.Close())
	b, err := json.Marshal([]any{snap, gotS, gotU})
	must(t, err)
	if len(b) == 0 || string(gotS.TokenHash) != string(sr.TokenHash) || gotU.ID != boltUser(2).ID {
		t.Fatal("values changed after Close")
	}
}

// TestBoltStore_Check checks that Check finds each kind of damage, so that a
// clean Check in the other tests means something.
func TestBoltStore_Check(t *testing.T) {
	t.Parallel()
	damages := []struct {
		name string
		want string // in Check's error
		fn   func(tx *bbolt.Tx) error
	}{
		{"UnindexedEmail", "not indexed", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.email").Delete([]byte(boltUser(2).Email))
		}},
		{"EmailIndexToMissingUser", "missing user", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.email").Put([]byte("ghost@example.com"), []byte("nobody"))
		}},
		{"EmailIndexToWrongUser", "whose email is", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.email").Put([]byte(boltUser(2).Email), []byte(boltUser(4).ID))
		}},
		{"UsernameIndexToMissingUser", "missing user", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.username").Put([]byte("ghost"), []byte("nobody"))
		}},
		{"SessionOfMissingUser", "is missing", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users").Delete([]byte(boltUser(2).ID))
		}},
		{"SessionNotInExpiryIndex", "not in the expiry index", func(tx *bbolt.Tx) error {
			c := boltBucket(tx, "sessions.expiry").Cursor()
			k, _ := c.First()
			return boltBucket(tx, "sessions.expiry").Delete(k)
		}},
		{"OrphanSessionIndex", "missing session", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "sessions.id").Put([]byte("ghost"), boltHash("nothing"))
		}},
		{"TokenOfMissingUser", "is missing", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users").Delete([]byte(boltUser(4).ID))
		}},
		{"OrphanTokenIndex", "missing token", func(tx *bbolt.Tx) error {
			k := append(binary.BigEndian.AppendUint64(nil, 1), 0, 0, 0, 0)
			return boltBucket(tx, "tokens.expiry").Put(append(k, boltHash("nothing")...), []byte{1})
		}},
		{"UndecodableUser", "user record", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users").Put([]byte(boltUser(4).ID), []byte("{"))
		}},
		{"NoVersion", "schema version", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "meta").Delete([]byte("version"))
		}},
		{"UnindexedFilter", "not in the filter index", func(tx *bbolt.Tx) error {
			c := boltBucket(tx, "users.filter").Cursor()
			k, _ := c.Last()
			return boltBucket(tx, "users.filter").Delete(k)
		}},
		{"FilterToMissingUser", "missing user", func(tx *bbolt.Tx) error {
			k := append(append([]byte{0, 5}, "admin"...), append([]byte{0, 6}, "active"...)...)
			return boltBucket(tx, "users.filter").Put(append(k, "nobody"...), []byte{1})
		}},
		{"FilterToWrongUser", "does not hold", func(tx *bbolt.Tx) error {
			k := append(append([]byte{0, 6}, "viewer"...), append([]byte{0, 6}, "active"...)...)
			return boltBucket(tx, "users.filter").Put(append(k, boltUser(4).ID...), []byte{1})
		}},
		{"WrongCounter", "counter", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.count").Put([]byte{0}, binary.BigEndian.AppendUint64(nil, 999))
		}},
		{"MissingCounter", "counter", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "users.count").Delete([]byte{0})
		}},
		{"UnfinishedRebuild", "rebuild", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "meta").Put([]byte("rebuild"), []byte{1})
		}},
		{"UndecodableSession", "session record", func(tx *bbolt.Tx) error {
			c := boltBucket(tx, "sessions").Cursor()
			k, _ := c.First()
			return boltBucket(tx, "sessions").Put(k, []byte{1, 2, 3})
		}},
		{"MissingBucket", "missing", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket([]byte("userkit.tokens.user"))
		}},
		{"NestedBucketLeft", "besides meta", func(tx *bbolt.Tx) error {
			_, err := tx.Bucket([]byte("userkit.users")).CreateBucket([]byte("sessions"))
			return err
		}},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			path := filepath.Join(boltFastDir(t), "users.db")
			s, err := users.OpenBoltStore(path, nil)
			must(t, err)
			boltFill(t, s)
			must(t, s.Check(t.Context()))
			must(t, s.Close())

			// Damage the file under an open store, which would repair some
			// damage (a missing version) when it opens the file.
			db := boltRaw(t, path)
			s, err = users.NewBoltStore(db)
			must(t, err)
			must(t, db.Update(d.fn))
			err = s.Check(t.Context())
			must(t, s.Close())
			must(t, db.Close())
			if !errors.Is(err, users.ErrCorrupt) || !strings.Contains(err.Error(), d.want) {
				t.Fatalf("Check = %v, want ErrCorrupt saying %q", err, d.want)
			}
		})
	}
}

// TestBoltStore_DeleteExpired checks the purge through the expiry indexes: the
// boundary, all three kinds of record, purges larger than one transaction, and
// that the indexes stay consistent.
func TestBoltStore_DeleteExpired(t *testing.T) {
	path := filepath.Join(boltFastDir(t), "users.db")
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() {
		must(t, s.Close())
		boltCheckFile(t, path)
	}()
	ctx := t.Context()
	u := boltUser(1)
	must(t, s.CreateUser(ctx, u))
	const n = 1600 // expired: more than one write transaction's worth
	for i := range n {
		exp := boltT0.Add(time.Duration(i%3-1) * time.Second) // t0-1s, t0, t0+1s
		must(t, s.CreateSession(ctx, boltSession(u.ID, fmt.Sprintf("s%05d", i), 0, exp)))
	}
	must(t, s.CreateToken(ctx, boltToken(u.ID, "old", users.PurposeMagicLink, boltT0), false))
	must(t, s.CreateToken(ctx, boltToken(u.ID, "new", users.PurposeMagicLink, boltT0.Add(time.Nanosecond)), false))
	for _, k := range []string{"id:a", "id:b"} {
		_, err := s.UpdateLoginAttempts(ctx, users.ThrottleKey(k), func(a *users.LoginAttempts) error {
			a.Failures = 1
			a.ExpiresAt = boltT0
			if k == "id:b" {
				a.ExpiresAt = boltT0.Add(time.Hour)
			}
			return nil
		})
		must(t, err)
	}

	left := 0
	for i := range n {
		if i%3 == 2 {
			left++
		}
	}
	got, err := s.DeleteExpired(ctx, boltT0)
	must(t, err)
	if want := n - left + 1 + 1; got != want { // sessions, a token, a throttle entry
		t.Errorf("DeleteExpired = %d, want %d", got, want)
	}
	ss, err := s.ListSessions(ctx, u.ID)
	must(t, err)
	if len(ss) != left {
		t.Errorf("%d sessions left, want %d", len(ss), left)
	}
	for _, sr := range ss {
		if !sr.ExpiresAt.After(boltT0) {
			t.Fatalf("session %s expiring at %v survived", sr.ID, sr.ExpiresAt)
		}
	}
	if a, _ := s.GetLoginAttempts(ctx, "id:b"); a.Failures != 1 {
		t.Error("an unexpired throttle entry was deleted")
	}
	if _, err := s.GetToken(ctx, boltToken(u.ID, "new", "", boltT0).Hash, users.PurposeMagicLink); err != nil {
		t.Errorf("an unexpired token was deleted: %v", err)
	}
	must(t, s.Check(ctx))

	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.DeleteExpired(ctx2, boltT0.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v", err)
	}
}

package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// base is the time the suite's records are created at: now, in UTC and whole
// seconds so that stores with coarse timestamps keep it exactly.
var base = time.Now().UTC().Truncate(time.Second)

var errSentinel = errors.New("storetest: error returned by fn")

// newUser returns a user record with a fresh ULID and an email, username and
// external ID made from it, not yet stored.
func newUser() *users.UserRecord {
	id := ulid.Make().String()
	low := strings.ToLower(id)
	return &users.UserRecord{
		User: users.User{
			ID:          id,
			ExternalID:  "ext|" + id,
			Email:       low + "@example.com",
			Username:    "u" + low,
			FirstName:   "Ada",
			LastName:    "Lovelace",
			Role:        users.RoleUser,
			Status:      users.StatusActive,
			Preferences: map[string]string{"lang": "en"},
			CreatedAt:   base,
			UpdatedAt:   base,
		},
		PasswordHash: "$2a$04$storetest",
	}
}

func mustCreateUser(t testing.TB, s users.Store, r *users.UserRecord) {
	t.Helper()
	if err := s.CreateUser(t.Context(), r); err != nil {
		t.Fatalf("setup: CreateUser(%s): %v", r.Email, err)
	}
}

// addUser stores a new user and returns it.
func addUser(t testing.TB, s users.Store) *users.UserRecord {
	t.Helper()
	r := newUser()
	mustCreateUser(t, s, r)
	return r
}

// addUsers stores n new users, created in a random order, and returns them in
// ascending ID order. edit, if not nil, changes user i before it is stored.
func addUsers(t testing.TB, s users.Store, n int, edit func(i int, r *users.UserRecord)) []*users.UserRecord {
	t.Helper()
	rs := make([]*users.UserRecord, n)
	for i := range rs {
		rs[i] = newUser()
	}
	slices.SortFunc(rs, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	for i, r := range rs {
		if edit != nil {
			edit(i, r)
		}
	}
	for _, i := range mathrand.Perm(n) {
		mustCreateUser(t, s, rs[i])
	}
	return rs
}

func mustGetUser(t testing.TB, s users.Store, id string) *users.UserRecord {
	t.Helper()
	r, err := s.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", id, err)
	}
	return r
}

func randomHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// newSession returns a session for u under u's Generation, not yet stored.
func newSession(u *users.UserRecord) *users.SessionRecord {
	return &users.SessionRecord{
		ID:             ulid.Make().String(),
		TokenHash:      randomHash(),
		UserID:         u.ID,
		UserGeneration: u.Generation,
		CreatedAt:      base,
		ExpiresAt:      base.Add(24 * time.Hour),
		LastSeenAt:     base,
	}
}

// addSession stores a new session for the user with the ID, under the user's
// current Generation, and returns it.
func addSession(t testing.TB, s users.Store, userID string) *users.SessionRecord {
	t.Helper()
	sess := newSession(mustGetUser(t, s, userID))
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("setup: CreateSession: %v", err)
	}
	return sess
}

// newToken returns a token for u, not yet stored.
func newToken(u *users.UserRecord, p users.Purpose) *users.TokenRecord {
	return &users.TokenRecord{
		Hash:      randomHash(),
		UserID:    u.ID,
		Purpose:   p,
		Email:     u.Email,
		CreatedAt: base,
		ExpiresAt: base.Add(time.Hour),
	}
}

func mustCreateToken(t testing.TB, s users.Store, tok *users.TokenRecord) {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok, false); err != nil {
		t.Fatalf("setup: CreateToken: %v", err)
	}
}

// addToken stores a new token for u and returns it.
func addToken(t testing.TB, s users.Store, u *users.UserRecord, p users.Purpose) *users.TokenRecord {
	t.Helper()
	tok := newToken(u, p)
	mustCreateToken(t, s, tok)
	return tok
}

func mustUpdateAttempts(t testing.TB, s users.Store, key users.ThrottleKey, a users.LoginAttempts) {
	t.Helper()
	_, err := s.UpdateLoginAttempts(t.Context(), key, func(p *users.LoginAttempts) error {
		*p = a
		return nil
	})
	if err != nil {
		t.Fatalf("setup: UpdateLoginAttempts(%q): %v", key, err)
	}
}

// The norm functions return a copy that compares with reflect.DeepEqual by
// meaning: times by instant (a store may return them in another location and
// without a monotonic reading), and a nil map like an empty one.

func normUser(r *users.UserRecord) users.UserRecord {
	c := *r.Clone()
	c.EmailVerifiedAt = c.EmailVerifiedAt.UTC()
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	c.LastLoginAt = c.LastLoginAt.UTC()
	c.LastActiveAt = c.LastActiveAt.UTC()
	if len(c.Preferences) == 0 {
		c.Preferences = nil
	}
	return c
}

func normSession(s *users.SessionRecord) users.SessionRecord {
	c := *s.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	c.LastSeenAt = c.LastSeenAt.UTC()
	c.SecondFactorAt = c.SecondFactorAt.UTC()
	c.AuthenticatedAt = c.AuthenticatedAt.UTC()
	if len(c.Methods) == 0 {
		c.Methods = nil
	}
	return c
}

func normToken(tok *users.TokenRecord) users.TokenRecord {
	c := *tok.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	return c
}

func normAttempts(a users.LoginAttempts) users.LoginAttempts {
	a.WindowStart = a.WindowStart.UTC()
	a.LockedUntil = a.LockedUntil.UTC()
	a.ExpiresAt = a.ExpiresAt.UTC()
	return a
}

func sameUser(a, b *users.UserRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normUser(a), normUser(b))
}

func sameSession(a, b *users.SessionRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normSession(a), normSession(b))
}

func sameToken(a, b *users.TokenRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normToken(a), normToken(b))
}

func sameAttempts(a, b users.LoginAttempts) bool {
	return reflect.DeepEqual(normAttempts(a), normAttempts(b))
}

// The show functions print a record with all its fields.

func showUser(r *users.UserRecord) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normUser(r))
}

func showSession(s *users.SessionRecord) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normSession(s))
}

func showToken(tok *users.TokenRecord) string {
	if tok == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normToken(tok))
}

// wantErr reports a broken rule unless errors.Is(err, want).
func wantErr(t testing.TB, err, want error, rule string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", rule, err, want)
	}
}

// wantUser reports a broken rule unless the stored user with want.ID equals want.
func wantUser(t testing.TB, s users.Store, want *users.UserRecord, rule string) {
	t.Helper()
	got, err := s.GetUser(t.Context(), want.ID)
	if err != nil {
		t.Errorf("%s: GetUser: %v", rule, err)
		return
	}
	if !sameUser(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showUser(got), showUser(want))
	}
}

// wantNoUser reports a broken rule unless no user has the ID.
func wantNoUser(t testing.TB, s users.Store, id, rule string) {
	t.Helper()
	r, err := s.GetUser(t.Context(), id)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetUser returned %s, %v; want ErrNotFound", rule, showUser(r), err)
	}
}

// wantEmailOwner reports a broken rule unless the email belongs to the user with
// the ID, or to nobody when id is empty.
func wantEmailOwner(t testing.TB, s users.Store, email, id, rule string) {
	t.Helper()
	r, err := s.GetUserByEmail(t.Context(), email)
	switch {
	case id == "" && !errors.Is(err, users.ErrNotFound):
		t.Errorf("%s: GetUserByEmail(%q) returned %s, %v; want ErrNotFound", rule, email, showUser(r), err)
	case id != "" && err != nil:
		t.Errorf("%s: GetUserByEmail(%q): %v", rule, email, err)
	case id != "" && r.ID != id:
		t.Errorf("%s: GetUserByEmail(%q) returned user %s, want %s", rule, email, r.ID, id)
	}
}

// wantUsernameOwner reports a broken rule unless the username belongs to the
// user with the ID, or to nobody when id is empty.
func wantUsernameOwner(t testing.TB, s users.Store, username, id, rule string) {
	t.Helper()
	r, err := s.GetUserByUsername(t.Context(), username)
	switch {
	case id == "" && !errors.Is(err, users.ErrNotFound):
		t.Errorf("%s: GetUserByUsername(%q) returned %s, %v; want ErrNotFound", rule, username, showUser(r), err)
	case id != "" && err != nil:
		t.Errorf("%s: GetUserByUsername(%q): %v", rule, username, err)
	case id != "" && r.ID != id:
		t.Errorf("%s: GetUserByUsername(%q) returned user %s, want %s", rule, username, r.ID, id)
	}
}

// getSession is GetSession into new records.
func getSession(ctx context.Context, s users.Store, hash []byte) (*users.SessionRecord, *users.UserRecord, error) {
	var u users.UserRecord
	sr, err := getSessionInto(ctx, s, hash, &u)
	if err != nil {
		return nil, nil, err
	}
	return &sr, &u, nil
}

// getSessionInto is GetSession for a hash held in a slice, as records hold
// it. The record GetSession returns may leave its TokenHash nil (the caller
// has the hash): getSessionInto sets it, so that records compare whole, and
// reports a TokenHash that is set to another hash.
func getSessionInto(ctx context.Context, s users.Store, hash []byte, u *users.UserRecord) (users.SessionRecord, error) {
	if len(hash) != sha256.Size {
		return users.SessionRecord{}, fmt.Errorf("storetest: a token hash of %d bytes, want %d", len(hash), sha256.Size)
	}
	sr, err := s.GetSession(ctx, [sha256.Size]byte(hash), u)
	if err != nil {
		return sr, err
	}
	switch {
	case sr.TokenHash == nil:
		sr.TokenHash = slices.Clone(hash)
	case !bytes.Equal(sr.TokenHash, hash):
		return sr, fmt.Errorf("GetSession(%x) returned a session whose TokenHash is %x", hash, sr.TokenHash)
	}
	return sr, nil
}

// wantSession reports a broken rule unless the stored session with want's token
// hash equals want.
func wantSession(t testing.TB, s users.Store, want *users.SessionRecord, rule string) {
	t.Helper()
	got, _, err := getSession(t.Context(), s, want.TokenHash)
	if err != nil {
		t.Errorf("%s: GetSession: %v", rule, err)
		return
	}
	if !sameSession(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showSession(got), showSession(want))
	}
}

// wantNoSession reports a broken rule unless no session has the token hash.
func wantNoSession(t testing.TB, s users.Store, hash []byte, rule string) {
	t.Helper()
	got, _, err := getSession(t.Context(), s, hash)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetSession returned %s, %v; want ErrNotFound", rule, showSession(got), err)
	}
}

// wantSessions reports a broken rule unless ListSessions(userID) gives want, in
// that order.
func wantSessions(t testing.TB, s users.Store, userID string, want []*users.SessionRecord, rule string) {
	t.Helper()
	got, err := s.ListSessions(t.Context(), userID)
	if err != nil {
		t.Errorf("%s: ListSessions: %v", rule, err)
		return
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameSession(got[i], want[i])
	}
	if !ok {
		var g, w []string
		for _, x := range got {
			g = append(g, showSession(x))
		}
		for _, x := range want {
			w = append(w, showSession(x))
		}
		t.Errorf("%s: ListSessions returned\n%s\nwant\n%s", rule, strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// wantToken reports a broken rule unless the token is stored and can be read with
// GetToken.
func wantToken(t testing.TB, s users.Store, want *users.TokenRecord, rule string) {
	t.Helper()
	got, err := s.GetToken(t.Context(), want.Hash, want.Purpose)
	if err != nil {
		t.Errorf("%s: GetToken: %v", rule, err)
		return
	}
	if !sameToken(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showToken(got), showToken(want))
	}
}

// wantNoToken reports a broken rule unless the token is gone.
func wantNoToken(t testing.TB, s users.Store, tok *users.TokenRecord, rule string) {
	t.Helper()
	got, err := s.GetToken(t.Context(), tok.Hash, tok.Purpose)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetToken returned %s, %v; want ErrNotFound", rule, showToken(got), err)
	}
}

// wantAttempts reports a broken rule unless the entry for key equals want.
func wantAttempts(t testing.TB, s users.Store, key users.ThrottleKey, want users.LoginAttempts, rule string) {
	t.Helper()
	got, err := s.GetLoginAttempts(t.Context(), key)
	if err != nil {
		t.Errorf("%s: GetLoginAttempts(%q): %v", rule, key, err)
		return
	}
	if !sameAttempts(got, want) {
		t.Errorf("%s: GetLoginAttempts(%q) = %+v, want %+v", rule, key, got, want)
	}
}

// start runs fn(i) for i in [0, n) on n goroutines released together, and waits
// for them all.
func start(n int, fn func(i int)) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			fn(i)
		})
	}
	close(gate)
	wg.Wait()
}

// rounds calls round again and again: at least 5 times, then until it has run for
// budget or max times. Races that a store loses only now and then are found in
// many rounds of a fast store, and a slow store still finishes soon.
func rounds(max int, budget time.Duration, round func()) {
	begin := time.Now()
	for i := 0; i < max && (i < 5 || time.Since(begin) < budget); i++ {
		round()
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
}

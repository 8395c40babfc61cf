package postgres_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// TestStore_MFARoundTrip checks that MFA records and challenges come back from
// the tables exactly as written, every field, nil and empty lists told apart.
func TestStore_MFARoundTrip(t *testing.T) {
	db := openTestDB(t)
	s := mustNew(t, db.pool(t, db.schema(t)))
	ctx := t.Context()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	u1, u2 := newUser("one@example.com"), newUser("two@example.com")
	must(t, s.CreateUser(ctx, u1))
	must(t, s.CreateUser(ctx, u2))
	mfa := []*users.MFARecord{
		{
			UserID: u1.ID,
			TOTP: &users.TOTPFactor{
				Secret: []byte("\x00sealed\xffsecret"), KeyID: "key-2026", Confirmed: true,
				CreatedAt: t0, ConfirmedAt: t0.Add(time.Minute + 7), LastStep: 59_000_123,
			},
			RecoveryCodes:   [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), {}},
			RecoveryCodesAt: t0.Add(time.Hour),
		},
		{UserID: u2.ID, TOTP: &users.TOTPFactor{Secret: []byte{1, 2, 3}, KeyID: "k"}, RecoveryCodes: [][]byte{}, RecoveryCodesAt: t0},
	}
	for _, r := range mfa {
		got, err := s.UpdateMFA(ctx, r.UserID, func(w *users.MFARecord) (bool, error) {
			*w = *r.Clone()
			return false, nil
		})
		must(t, err)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("UpdateMFA returned\n%+v\nwant\n%+v", got, r)
		}
		if got, err := s.GetMFA(ctx, r.UserID); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("GetMFA(%s) =\n%+v, %v\nwant\n%+v", r.UserID, got, err, r)
		}
	}
	chals := []*users.ChallengeRecord{
		{Hash: bytes.Repeat([]byte{'a'}, 32), UserID: u1.ID, Methods: []users.AuthMethod{users.MethodPassword},
			Attempts: 2, CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)},
		{Hash: bytes.Repeat([]byte{'b'}, 32), UserID: u1.ID, Methods: []users.AuthMethod{}, CreatedAt: t0, ExpiresAt: t0},
		{Hash: bytes.Repeat([]byte{'c'}, 32), UserID: u2.ID, CreatedAt: t0, ExpiresAt: t0},
	}
	for _, c := range chals {
		must(t, s.CreateChallenge(ctx, c))
		if got, err := s.GetChallenge(ctx, c.Hash); err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("GetChallenge(%x) =\n%+v, %v\nwant\n%+v", c.Hash, got, err, c)
		}
	}
}

// TestStore_MFARacesTwoPools runs the second factor's races between two Stores
// over one schema, each with its own pool, as two processes would: a recovery
// code is used once, a TOTP step is accepted once, and a challenge's attempts
// stay bounded.
func TestStore_MFARacesTwoPools(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	stores := [2]*postgres.Store{mustNew(t, db.pool(t, schema)), mustNew(t, db.pool(t, schema))}
	ctx := t.Context()
	u := newUser("race@example.com")
	must(t, stores[0].CreateUser(ctx, u))
	code := bytes.Repeat([]byte{9}, 32)
	_, err := stores[0].UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
		r.TOTP = &users.TOTPFactor{Secret: []byte("sealed"), KeyID: "k", Confirmed: true, LastStep: 100}
		r.RecoveryCodes = [][]byte{code, bytes.Repeat([]byte{8}, 32)}
		return false, nil
	})
	must(t, err)
	errUsed := errors.New("used")
	const n = 24
	race := func(call func(i int) error) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				errs[i] = call(i)
			})
		}
		close(gate)
		wg.Wait()
		return errs
	}

	errs := race(func(i int) error {
		_, err := stores[i%2].UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
			for j, h := range r.RecoveryCodes {
				if bytes.Equal(h, code) {
					r.RecoveryCodes = append(r.RecoveryCodes[:j], r.RecoveryCodes[j+1:]...)
					return false, nil
				}
			}
			return false, errUsed
		})
		return err
	})
	storetest.ExactlyOne(t, errs, errUsed, "of UpdateMFA calls using one recovery code, through two pools, exactly one must succeed")

	errs = race(func(i int) error {
		_, err := stores[i%2].UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
			if r.TOTP.LastStep >= 101 {
				return false, errUsed
			}
			r.TOTP.LastStep = 101
			return false, nil
		})
		return err
	})
	storetest.ExactlyOne(t, errs, errUsed, "of UpdateMFA calls accepting one TOTP step, through two pools, exactly one must succeed")

	hash := bytes.Repeat([]byte{'h'}, 32)
	now := time.Now().UTC()
	must(t, stores[0].CreateChallenge(ctx, &users.ChallengeRecord{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	const max = 5
	var mu sync.Mutex
	seen := map[int]bool{}
	errs = race(func(i int) error {
		c, err := stores[i%2].CountChallengeAttempt(ctx, hash, max)
		if err == nil {
			mu.Lock()
			defer mu.Unlock()
			if seen[c.Attempts] {
				return fmt.Errorf("attempt %d handed out twice", c.Attempts)
			}
			seen[c.Attempts] = true
		}
		return err
	})
	got := 0
	for _, err := range errs {
		switch {
		case err == nil:
			got++
		case !errors.Is(err, users.ErrNotFound):
			t.Errorf("CountChallengeAttempt: %v", err)
		}
	}
	if got != max {
		t.Errorf("%d of %d concurrent CountChallengeAttempt calls got the challenge, want exactly max = %d", got, n, max)
	}
	if c, err := stores[1].GetChallenge(ctx, hash); err != nil || c.Attempts != max {
		t.Errorf("GetChallenge after max attempts: %+v, %v; want the challenge, with Attempts %d", c, err, max)
	}

	// The challenge out of attempts is still redeemed, by exactly one of
	// the completions racing through the two pools.
	cur, err := stores[0].GetUser(ctx, u.ID)
	must(t, err)
	errs = race(func(i int) error {
		sess := &users.SessionRecord{ID: fmt.Sprintf("S%02d", i), TokenHash: bytes.Repeat([]byte{byte(i)}, 32), UserID: u.ID,
			UserGeneration: cur.Generation, CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}
		return stores[i%2].CompleteChallenge(ctx, hash, func(*users.MFARecord) error { return nil }, sess)
	})
	storetest.ExactlyOne(t, errs, users.ErrNotFound, "of CompleteChallenge calls for one challenge, through two pools, exactly one must succeed")
}

// TestStore_NoTOTPSecretInRows enrols TOTP through the Manager over the
// PostgreSQL store, logs in with a code, and scans every row of the store's
// tables, as PostgreSQL prints them (bytea in hex), and the sealed secret's
// bytes, for the secret in base32, raw (in hex and as bytes) and as the
// otpauth URI, and for the recovery codes: none may be there. The scan is shown
// to see the MFA row by finding the sealed secret in it.
func TestStore_NoTOTPSecretInRows(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	secrets, stored := storetest.NewFixture(t, mustNew(t, pool), storetest.WithMFAKey).MFASecrets(t)
	rows := dumpRows(t, pool)
	for _, b := range stored {
		if !strings.Contains(rows, hex.EncodeToString(b)) {
			t.Fatal("the rows lack the sealed secret or a recovery code's hash: the scan proves nothing")
		}
	}
	for name, b := range secrets {
		if strings.Contains(rows, string(b)) || strings.Contains(rows, hex.EncodeToString(b)) {
			t.Errorf("the store's rows contain the %s (as text or in hex)", name)
		}
	}
	var sealed [][]byte
	rs, err := pool.Query(t.Context(), `SELECT totp_secret FROM userkit_mfa`)
	must(t, err)
	for rs.Next() {
		var b []byte
		must(t, rs.Scan(&b))
		sealed = append(sealed, b)
	}
	must(t, rs.Err())
	if len(sealed) != 1 || bytes.Contains(sealed[0], secrets["raw secret"]) {
		t.Errorf("totp_secret: %d rows, want 1 that does not hold the raw secret", len(sealed))
	}
}

// dumpRows returns every row of the store's tables as PostgreSQL prints them.
func dumpRows(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var tables []string
	rows, err := pool.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'userkit%'`)
	must(t, err)
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	must(t, rows.Err())
	if len(tables) < 5 {
		t.Fatalf("found only the tables %v", tables)
	}
	var b strings.Builder
	for _, name := range tables {
		rows, err := pool.Query(t.Context(), `SELECT t::text FROM `+name+` t`)
		must(t, err)
		for rows.Next() {
			var line string
			must(t, rows.Scan(&line))
			b.WriteString(line)
			b.WriteByte('\n')
		}
		must(t, rows.Err())
	}
	return b.String()
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestStore_UpdateLoginAttemptsRacesDelete races calls that count an attempt
// with calls that leave the entry zero, which deletes it (a second factor
// verified forgets the failures), through two pools: every call must succeed.
// A call whose insert found the entry that another then deleted must insert it
// again, not fail on the missing row.
func TestStore_UpdateLoginAttemptsRacesDelete(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	stores := [2]*postgres.Store{mustNew(t, db.pool(t, schema)), mustNew(t, db.pool(t, schema))}
	ctx := t.Context()
	far := time.Now().Add(time.Hour)
	for round := range 10 {
		const n = 32
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				_, errs[i] = stores[i%2].UpdateLoginAttempts(ctx, "user:race", func(a *users.LoginAttempts) error {
					if i%3 == 0 {
						*a = users.LoginAttempts{}
					} else {
						a.Failures++
						a.ExpiresAt = far
					}
					return nil
				})
			})
		}
		close(gate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: UpdateLoginAttempts call %d: %v", round, i, err)
			}
		}
	}
}

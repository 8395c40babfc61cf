package users_test

// The security properties of SECURITY.md, one test per numbered item (OWASP ASVS 4
// chapter 2, NIST SP 800-63B), each failing if the property it is named after
// breaks. They live in files named for the threat they stand against:
//
//	security_password_test.go     weak, mangled or truncated passwords; bcrypt cost and imports (items 1-5, 18)
//	security_enumeration_test.go  telling accounts apart by errors or timing (items 6, 17)
//	security_identifiers_test.go  one identifier folding into another's (item 14)
//	security_lockout_test.go      online guessing: throttling and lockout (items 7, 13, 15)
//	security_dos_test.go          exhausting the server with bcrypt work (item 8)
//	security_tokens_test.go       guessing or reusing one-time tokens (items 9, 16)
//	security_sessions_test.go     sessions that outlive their timeouts or their end (items 9, 10)
//	security_secrets_test.go      passwords or tokens leaking into storage or errors (item 11)
//	security_audit_test.go        the audit log: equal work, flooding, forged clients (items 22-24)
//
// This file holds the helpers they share.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// secManager returns a Manager over store with a fake clock, bcrypt cost 4 and a
// counter of bcrypt comparisons; edit, if not nil, may change the options first.
// It is newFixture for tests that need their own store or several Managers over
// one store.
func secManager(tb testing.TB, store users.Store, clock *storetest.Clock, compares *atomic.Int64, edit func(o *users.Options)) *users.Manager {
	tb.Helper()
	o := &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now}
	if edit != nil {
		edit(o)
	}
	m, err := users.New(store, o)
	if err != nil {
		tb.Fatalf("users.New: %v", err)
	}
	if compares != nil {
		users.SetCompareHook(m, func() { compares.Add(1) })
	}
	return m
}

// secWantPasswordRefused fails unless err is a *ValidationError on "password"
// with a reason, matching ErrInvalidInput.
func secWantPasswordRefused(tb testing.TB, err error, what string) {
	tb.Helper()
	var ve *users.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, users.ErrInvalidInput) || ve.Field != "password" || ve.Reason == "" {
		tb.Fatalf("%s: got %v, want a *ValidationError on \"password\" with a reason", what, err)
	}
}

// secStoredHash returns the password hash the store keeps for email.
func secStoredHash(tb testing.TB, s users.Store, email string) string {
	tb.Helper()
	r, err := s.GetUserByEmail(tb.Context(), email)
	if err != nil {
		tb.Fatalf("GetUserByEmail(%q): %v", email, err)
	}
	return r.PasswordHash
}

// secOurCost returns the bcrypt cost of a hash in this package's format, failing
// the test if the hash is in another format.
func secOurCost(tb testing.TB, h string) int {
	tb.Helper()
	b, ok := strings.CutPrefix(h, users.HashPrefix)
	if !ok {
		tb.Fatalf("stored hash %.12q… lacks the marker %q", h, users.HashPrefix)
	}
	c, err := bcrypt.Cost([]byte(b))
	if err != nil {
		tb.Fatalf("bcrypt.Cost of the stored hash: %v", err)
	}
	return c
}

// secLogin logs in and returns how many bcrypt comparisons it ran and the error.
func (f *Fixture) secLogin(identifier, password string) (int64, error) {
	before := f.Compares.Load()
	_, err := f.M.Login(context.Background(), identifier, password)
	return f.Compares.Load() - before, err
}

// secMedian returns the median of ds (which it sorts).
func secMedian(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// hangul64 returns 64 Hangul syllables that each have a final consonant, so that
// each decomposes (NFD) into three jamo: 192 bytes composed, 576 decomposed.
func hangul64() string {
	var b strings.Builder
	for i := range 64 {
		b.WriteRune(rune(0xAC00 + i*28 + 27))
	}
	return b.String()
}

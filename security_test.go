package users_test

// The security properties of SECURITY.md, one test per numbered item of the
// hardening issue (OWASP ASVS 4 chapter 2, NIST SP 800-63B). Each test fails if
// the property it is named after breaks.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/userkit/users"
)

// secManager returns a Manager over store with a fake clock, bcrypt cost 4 and a
// counter of bcrypt comparisons; edit, if not nil, may change the options first.
// It is newFixture for tests that need their own store or several Managers over
// one store.
func secManager(tb testing.TB, store users.Store, clock *Clock, compares *atomic.Int64, edit func(o *users.Options)) *users.Manager {
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
	r, err := s.GetUserByEmail(context.Background(), email)
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

// Item 1: NFKC, the same on set and on check; case preserved.
func TestSecurity_NFKC(t *testing.T) {
	bg := context.Background()
	for _, tc := range []struct{ name, set, login string }{
		{"PrecomposedSetDecomposedLogin", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e", "cafe\u0301 cre\u0300me bru\u0302le\u0301e"},
		{"DecomposedSetPrecomposedLogin", "cafe\u0301 cre\u0300me bru\u0302le\u0301e", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e"},
		{"CompatibilityLigature", "\ufb01nal \ufb01nish line", "final finish line"},
		{"FullwidthLatin", "\uff4d\uff59 \uff53\uff45\uff43\uff52\uff45\uff54 \uff50\uff41\uff53\uff53", "my secret pass"},
		{"HangulAsJamo", hangul64(), norm.NFD.String(hangul64())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.set == tc.login {
				t.Fatal("bad test: the two forms are the same string")
			}
			f := newFixture(t, nil)
			f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: tc.set})
			f.mustLogin(t, "a@example.com", tc.set)
			f.mustLogin(t, "a@example.com", tc.login)
		})
	}
	t.Run("LengthCountedAfterNFKC", func(t *testing.T) {
		f := newFixture(t, nil)
		// 8 characters after NFKC, 16 code points before: accepted.
		eight := strings.Repeat("e\u0301", 8)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: eight})
		f.mustLogin(t, "a@example.com", strings.Repeat("\u00e9", 8))
		// 7 characters after NFKC, 14 code points (21 bytes) before: refused.
		_, err := f.M.Create(bg, users.NewUser{Email: "b@example.com", Password: strings.Repeat("e\u0301", 7)})
		secWantPasswordRefused(t, err, "7 characters written as 14 code points")
		// 3 code points that NFKC makes 9 characters: accepted.
		f.mustCreate(t, users.NewUser{Email: "c@example.com", Password: "\ufb03\ufb03\ufb03"})
		f.mustLogin(t, "c@example.com", "ffiffiffi")
	})
	t.Run("CasePreserved", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: "Correct Horse Battery"})
		f.mustLogin(t, "a@example.com", "Correct Horse Battery")
		for _, pw := range []string{"correct horse battery", "CORRECT HORSE BATTERY", "Correct horse battery"} {
			if _, err := f.M.Login(bg, "a@example.com", pw); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Errorf("Login(%q) against %q: got %v, want ErrInvalidCredentials", pw, "Correct Horse Battery", err)
			}
		}
	})
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

// Item 2: at least 8 characters, up to 128 of any script, nothing truncated,
// control characters refused.
func TestSecurity_LengthAndTruncation(t *testing.T) {
	bg := context.Background()
	t.Run("Minimum", func(t *testing.T) {
		f := newFixture(t, nil)
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "zq8#Lm2"})
		secWantPasswordRefused(t, err, "7 characters")
		f.mustCreate(t, users.NewUser{Email: "b@example.com", Password: "zq8#Lm2!"})

		_, err = users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MinPasswordLength: 7})
		wantField(t, err, "options.MinPasswordLength")

		f12 := newFixture(t, func(o *users.Options) { o.MinPasswordLength = 12 })
		_, err = f12.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "zq8#Lm2!abc"})
		secWantPasswordRefused(t, err, "11 characters with a minimum of 12")
		f12.mustCreate(t, users.NewUser{Email: "b@example.com", Password: "zq8#Lm2!abcd"})
	})

	t.Run("64CharactersOfAnyScript", func(t *testing.T) {
		for _, tc := range []struct{ name, unit string }{
			{"CJK", "\u5bc6\u7801\u5b89\u5168"},                   // 3 bytes each: 192 bytes
			{"Emoji", "\U0001F600\U0001F680\U0001F512\U0001F511"}, // 4 bytes each: 256 bytes
			{"Cyrillic", "\u043f\u0430\u0440\u043e"},              // 2 bytes each
			{"Devanagari", "\u0915\u0916\u0917\u0918"},            // 3 bytes each
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, nil)
				pw := strings.Repeat(tc.unit, 16)
				if n := utf8.RuneCountInString(pw); n != 64 {
					t.Fatalf("bad test: %d characters", n)
				}
				f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: pw})
				f.mustLogin(t, "a@example.com", pw)
				// Differ only in the last character, far beyond bcrypt's 72 bytes.
				r := []rune(pw)
				r[63] = 'x'
				if n, err := f.secLogin("a@example.com", string(r)); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
					t.Errorf("Login with the last of 64 characters changed: got %v after %d comparisons, want ErrInvalidCredentials after 1", err, n)
				}
			})
		}
	})

	t.Run("NoTruncation", func(t *testing.T) {
		f := newFixture(t, nil)
		a72 := strings.Repeat("a", 72)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: a72})
		f.mustCreate(t, users.NewUser{Email: "b@example.com", Password: a72 + "X"})
		for _, tc := range []struct{ id, pw string }{
			{"a@example.com", a72 + "X"},
			{"b@example.com", a72},
			{"b@example.com", a72 + "Y"},
		} {
			if _, err := f.M.Login(bg, tc.id, tc.pw); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Errorf("Login(%s, %d bytes): got %v, want ErrInvalidCredentials", tc.id, len(tc.pw), err)
			}
		}
		f.mustLogin(t, "a@example.com", a72)
		f.mustLogin(t, "b@example.com", a72+"X")
	})

	t.Run("Maximum", func(t *testing.T) {
		f := newFixture(t, nil)
		for i, pw := range []string{
			strings.Repeat("zxvbnmqp", 16),           // 128 ASCII
			strings.Repeat("\u5bc6\u7801", 64),       // 128 CJK, 384 bytes
			strings.Repeat("\U0001F600", 128),        // 128 emoji, 512 bytes
			strings.Repeat("e\u0301", 128),           // 128 after NFKC, 256 code points
			norm.NFD.String(hangul64() + hangul64()), // 128 after NFKC, 1152 bytes
		} {
			email := fmt.Sprintf("max%d@example.com", i)
			f.mustCreate(t, users.NewUser{Email: email, Password: pw})
			f.mustLogin(t, email, pw)
		}
		for _, pw := range []string{
			strings.Repeat("zxvbnmqp", 16) + "i",
			strings.Repeat("\u5bc6", 129),
			strings.Repeat("\U0001F600", 129),
			strings.Repeat("\ufdfa", 8), // 8 characters that NFKC makes 144
			strings.Repeat("x", 1<<20),
		} {
			_, err := f.M.Create(bg, users.NewUser{Email: "over@example.com", Password: pw})
			secWantPasswordRefused(t, err, fmt.Sprintf("%d characters", utf8.RuneCountInString(norm.NFKC.String(pw))))
		}
	})

	t.Run("ControlCharactersRefused", func(t *testing.T) {
		f := newFixture(t, nil)
		for _, c := range []string{"\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\u0085", "\u009f"} {
			_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "zxvbnmqp" + c + "ijklmnop"})
			secWantPasswordRefused(t, err, fmt.Sprintf("password with %q", c))
		}
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "zxvbnmqp\xffijk"})
		secWantPasswordRefused(t, err, "invalid UTF-8")

		f.mustCreate(t, users.NewUser{Email: "b@example.com", Password: "zxvbnmqp"})
		for _, pw := range []string{"zxvbnmqp\x00zxvbnmqp", "zxvbnmqp\x00", "\x00zxvbnmqp"} {
			if n, err := f.secLogin("b@example.com", pw); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Errorf("Login(%q) for password %q: got %v after %d comparisons, want ErrInvalidCredentials after 1", pw, "zxvbnmqp", err, n)
			}
		}
	})
}

// Item 3: no composition rules; a checker hook with a default that refuses the
// user's own identifiers and common passwords.
func TestSecurity_PasswordChecker(t *testing.T) {
	bg := context.Background()
	t.Run("DefaultRefuses", func(t *testing.T) {
		f := newFixture(t, nil)
		nu := users.NewUser{Email: "Alice.Smith@Example.com", Username: "alice_s99"}
		for _, pw := range []string{
			"alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", // the email
			"alice.smith", "Alice.Smith", // its local part
			"alice_s99", "ALICE_S99", // the username
			"password", "Password", "12345678", "baseball", "iloveyou", // common
		} {
			nu.Password = pw
			_, err := f.M.Create(bg, nu)
			secWantPasswordRefused(t, err, fmt.Sprintf("Create with password %q", pw))
			if strings.ContainsAny(pw, "@._") && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(pw)) {
				t.Errorf("the error %q repeats the password", err)
			}
			if err := users.DefaultPasswordChecker(bg, pw, &users.User{Email: "alice.smith@example.com", Username: "alice_s99"}); err == nil {
				t.Errorf("DefaultPasswordChecker(%q) = nil", pw)
			}
		}
		if _, err := f.M.GetByEmail(bg, nu.Email); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("a refused Create stored a user: %v", err)
		}
	})
	t.Run("NoCompositionRules", func(t *testing.T) {
		f := newFixture(t, nil)
		for i, pw := range []string{
			"all lower case words", "ONLYUPPERCASE", "9183746501928374", "no digits, no capitals",
			"\u5bc6\u7801\u5bc6\u7801\u5b89\u5168\u5b89\u5168",
		} {
			f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: pw})
		}
	})
	t.Run("HookRunsOnEveryPasswordSet", func(t *testing.T) {
		type call struct{ pw, email string }
		var mu sync.Mutex
		var calls []call
		f := newFixture(t, func(o *users.Options) {
			o.PasswordChecker = func(ctx context.Context, pw string, u *users.User) error {
				mu.Lock()
				calls = append(calls, call{pw, u.Email})
				mu.Unlock()
				if strings.Contains(pw, "horse") {
					return errors.New("must not mention horses")
				}
				if strings.Contains(pw, "pony") {
					return &users.ValidationError{Field: "password", Reason: "no ponies"}
				}
				return users.DefaultPasswordChecker(ctx, pw, u)
			}
		})
		wantCall := func(what, pw, email string) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			if len(calls) == 0 || calls[len(calls)-1] != (call{pw, email}) {
				t.Fatalf("%s: checker calls %q, want the last to be (%q, %q)", what, calls, pw, email)
			}
		}
		// Create: the checker gets the NFKC form.
		u := f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: "\ufb01ne wine glass"})
		wantCall("Create", "fine wine glass", "a@example.com")

		_, err := f.M.Create(bg, users.NewUser{Email: "b@example.com", Password: "my horse is fast"})
		secWantPasswordRefused(t, err, "plain error from the checker")
		if ve := (*users.ValidationError)(nil); !errors.As(err, &ve) || ve.Reason != "must not mention horses" {
			t.Errorf("got %v, want the checker's message as the Reason", err)
		}
		_, err = f.M.Create(bg, users.NewUser{Email: "b@example.com", Password: "my pony is fast"})
		if ve := (*users.ValidationError)(nil); !errors.As(err, &ve) || ve.Reason != "no ponies" {
			t.Errorf("a *ValidationError from the checker: got %v, want it unchanged", err)
		}
		_, err = f.M.Create(bg, users.NewUser{Email: "b@example.com", Password: "password"})
		secWantPasswordRefused(t, err, "the wrapped default checker")

		// UpdatePassword.
		if err := f.M.UpdatePassword(bg, u.ID, "fine wine glass", "my horse is slow"); err == nil {
			t.Fatal("UpdatePassword accepted a password the checker refuses")
		}
		wantCall("UpdatePassword", "my horse is slow", "a@example.com")
		if err := f.M.UpdatePassword(bg, u.ID, "fine wine glass", "second fine glass"); err != nil {
			t.Fatal(err)
		}
		wantCall("UpdatePassword", "second fine glass", "a@example.com")

		// ResetPassword: a refused password leaves the token usable.
		d, err := f.M.RequestPasswordReset(bg, "a@example.com")
		if err != nil {
			t.Fatal(err)
		}
		rt := d.Token
		if err := f.M.ResetPassword(bg, rt, "a horse reset"); err == nil {
			t.Fatal("ResetPassword accepted a password the checker refuses")
		}
		wantCall("ResetPassword", "a horse reset", "a@example.com")
		if err := f.M.ResetPassword(bg, rt, "third fine glass"); err != nil {
			t.Fatal(err)
		}
		wantCall("ResetPassword", "third fine glass", "a@example.com")

		// AcceptInvitation.
		_, it, err := f.M.Invite(bg, users.NewUser{Email: "inv@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.AcceptInvitation(bg, it, "invited horse"); err == nil {
			t.Fatal("AcceptInvitation accepted a password the checker refuses")
		}
		wantCall("AcceptInvitation", "invited horse", "inv@example.com")
		if _, err := f.M.AcceptInvitation(bg, it, "invited and fine"); err != nil {
			t.Fatal(err)
		}
		wantCall("AcceptInvitation", "invited and fine", "inv@example.com")
	})
}

// Item 4: cost at least 10 outside tests; rehash on login when the cost differs.
func TestSecurity_BcryptCost(t *testing.T) {
	bg := context.Background()
	t.Run("New", func(t *testing.T) {
		for _, tc := range []struct {
			cost     int
			testOnly bool
			ok       bool
		}{
			{9, false, false},
			{4, false, false},
			{10, false, true},
			{4, true, true},
			{3, true, false},
			{32, false, false},
		} {
			_, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: tc.cost, InsecureLowBcryptCostForTests: tc.testOnly})
			if tc.ok && err != nil {
				t.Errorf("New(cost %d, test option %v): %v", tc.cost, tc.testOnly, err)
			}
			if !tc.ok {
				var ve *users.ValidationError
				if !errors.As(err, &ve) || ve.Field != "options.BcryptCost" {
					t.Errorf("New(cost %d, test option %v): got %v, want a *ValidationError on options.BcryptCost", tc.cost, tc.testOnly, err)
				}
			}
		}
	})
	t.Run("RehashOnLogin", func(t *testing.T) {
		store, clock := users.NewMemoryStore(), NewClock()
		m4 := secManager(t, store, clock, nil, nil)
		m5 := secManager(t, store, clock, nil, func(o *users.Options) { o.BcryptCost = 5 })
		if _, err := m4.Create(bg, users.NewUser{Email: "a@example.com", Password: testPassword}); err != nil {
			t.Fatal(err)
		}
		h4 := secStoredHash(t, store, "a@example.com")
		if got := secOurCost(t, h4); got != 4 {
			t.Fatalf("cost after Create = %d, want 4", got)
		}
		// A failed login changes nothing.
		if _, err := m5.Login(bg, "a@example.com", "wrong password!"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if got := secStoredHash(t, store, "a@example.com"); got != h4 {
			t.Fatal("a failed login changed the stored hash")
		}
		// A success at another cost upgrades in place.
		if _, err := m5.Login(bg, "a@example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		h5 := secStoredHash(t, store, "a@example.com")
		if got := secOurCost(t, h5); got != 5 {
			t.Fatalf("cost after a login with cost 5 = %d, want 5", got)
		}
		// At the same cost nothing is rewritten.
		if _, err := m5.Login(bg, "a@example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		if got := secStoredHash(t, store, "a@example.com"); got != h5 {
			t.Fatal("a login at the hash's own cost rewrote the hash")
		}
		// "Another cost" includes a lower one: the configured cost rules.
		if _, err := m4.Login(bg, "a@example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		if got := secOurCost(t, secStoredHash(t, store, "a@example.com")); got != 4 {
			t.Fatalf("cost after a login with cost 4 = %d, want 4", got)
		}
	})
}

// Item 5: importing bcrypt hashes made elsewhere; upgraded on first login.
func TestSecurity_ImportBcrypt(t *testing.T) {
	bg := context.Background()
	mk := func(t *testing.T, prefix, pw string) string {
		t.Helper()
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(h, []byte("$2a$")) {
			t.Fatalf("bcrypt made %.4q, want $2a$", h)
		}
		return prefix + string(h[4:])
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(strings.Trim(prefix, "$"), func(t *testing.T) {
			f := newFixture(t, func(o *users.Options) { o.BcryptCost = 5 })
			for _, pw := range []string{"old system p4ss", "hunter2", "\u00e9t\u00e9 \u00e0 Paris"} {
				email := fmt.Sprintf("u%d@example.com", len(pw))
				h := mk(t, prefix, pw)
				f.mustCreate(t, users.NewUser{Email: email, PasswordHash: h})
				if got := secStoredHash(t, f.Store, email); got != h {
					t.Fatalf("stored %q, want the imported hash unchanged", got)
				}
				if n, err := f.secLogin(email, pw+"!"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
					t.Fatalf("wrong password: got %v after %d comparisons", err, n)
				}
				if secStoredHash(t, f.Store, email) != h {
					t.Fatal("a failed login changed the imported hash")
				}
				if n, err := f.secLogin(email, pw); err != nil || n != 1 {
					t.Fatalf("Login with the old password %q: got %v after %d comparisons, want success after 1", pw, err, n)
				}
				if got := secOurCost(t, secStoredHash(t, f.Store, email)); got != 5 {
					t.Fatalf("upgraded hash has cost %d, want 5", got)
				}
				f.mustLogin(t, email, pw) // the upgraded hash verifies the same password
				if _, err := f.M.Login(bg, email, pw+"!"); !errors.Is(err, users.ErrInvalidCredentials) {
					t.Fatalf("wrong password after the upgrade: %v", err)
				}
			}
		})
	}
	t.Run("Over72BytesNeverMatch", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
		p72 := strings.Repeat("x", 64) + "12345678"
		h := mk(t, "$2b$", p72)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", PasswordHash: h})
		for _, pw := range []string{p72 + "X", p72 + "anything at all", p72 + strings.Repeat("y", 200), "abc\x00" + p72[4:]} {
			if n, err := f.secLogin("a@example.com", pw); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Errorf("Login with %d bytes against an imported hash of %d: got %v after %d comparisons, want ErrInvalidCredentials after 1", len(pw), len(p72), err, n)
			}
		}
		if secStoredHash(t, f.Store, "a@example.com") != h {
			t.Fatal("a refused login changed the imported hash")
		}
		f.mustLogin(t, "a@example.com", p72)
	})
	t.Run("Refused", func(t *testing.T) {
		f := newFixture(t, nil)
		good := mk(t, "$2a$", "old system p4ss")
		ours := secStoredHash(t, f.Store, f.mustCreate(t, users.NewUser{Email: "ours@example.com"}).Email)
		for _, h := range []string{
			"$2x$" + good[4:], "$2$" + good[4:], "$1$abcdefgh$abcdefghijklmnopqrstuv", good[:59], good + "A",
			"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ours, "plain text",
		} {
			_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: h})
			wantField(t, err, "password_hash")
		}
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: testPassword, PasswordHash: good})
		wantField(t, err, "password_hash")
	})
}

// Item 6: every failure costs exactly one bcrypt comparison; a lock costs none.
func TestSecurity_NoEnumeration(t *testing.T) {
	bg := context.Background()
	long := strings.Repeat("k", 64) + "@" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 61)
	if len(long) != 254 {
		t.Fatalf("bad test: email of %d bytes", len(long))
	}
	f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
	f.mustCreate(t, users.NewUser{Email: "alice@example.com", Username: "alice"})
	f.mustCreate(t, users.NewUser{Email: "bob@example.com", Status: users.StatusSuspended})
	f.mustCreate(t, users.NewUser{Email: "carol@example.com", Status: users.StatusInactive})
	f.mustCreate(t, users.NewUser{Email: long})
	if _, _, err := f.M.Invite(bg, users.NewUser{Email: "dave@example.com"}); err != nil {
		t.Fatal(err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	if err != nil {
		t.Fatal(err)
	}
	// Another cost than the Manager's, so a success would upgrade it: every
	// failure below must leave it as it is.
	f.mustCreate(t, users.NewUser{Email: "erin@example.com", PasswordHash: string(h)})

	const wrong = "not the password"
	for _, tc := range []struct {
		name, id, pw string
		want         error
	}{
		{"UnknownEmail", "nobody@example.com", testPassword, users.ErrInvalidCredentials},
		{"UnknownUsername", "nobody", testPassword, users.ErrInvalidCredentials},
		{"MalformedIdentifier", "not an@email@", testPassword, users.ErrInvalidCredentials},
		{"EmptyIdentifier", "", testPassword, users.ErrInvalidCredentials},
		{"HugeIdentifier", strings.Repeat("a@", 5000), testPassword, users.ErrInvalidCredentials},
		{"LongIdentifierWhosePrefixIsAUser", long + "x", testPassword, users.ErrInvalidCredentials},
		{"WrongPassword", "alice@example.com", wrong, users.ErrInvalidCredentials},
		{"WrongPasswordByUsername", "ALICE", wrong, users.ErrInvalidCredentials},
		{"EmptyPassword", "alice@example.com", "", users.ErrInvalidCredentials},
		{"EmptyPasswordUnknownUser", "nobody@example.com", "", users.ErrInvalidCredentials},
		{"ShortPassword", "alice@example.com", "abc", users.ErrInvalidCredentials},
		{"200CharacterPassword", "alice@example.com", strings.Repeat("p", 200), users.ErrInvalidCredentials},
		{"200CharacterPasswordUnknownUser", "nobody@example.com", strings.Repeat("p", 200), users.ErrInvalidCredentials},
		{"1MiBPassword", "alice@example.com", strings.Repeat("p", 1<<20), users.ErrInvalidCredentials},
		{"PasswordWithNUL", "alice@example.com", testPassword + "\x00", users.ErrInvalidCredentials},
		{"InvalidUTF8Password", "alice@example.com", testPassword + "\xff", users.ErrInvalidCredentials},
		{"SuspendedWrongPassword", "bob@example.com", wrong, users.ErrInvalidCredentials},
		{"SuspendedRightPassword", "bob@example.com", testPassword, users.ErrAccountDisabled},
		{"InactiveWrongPassword", "carol@example.com", wrong, users.ErrInvalidCredentials},
		{"InactiveRightPassword", "carol@example.com", testPassword, users.ErrAccountDisabled},
		{"InvitedNoPasswordYet", "dave@example.com", testPassword, users.ErrInvalidCredentials},
		{"InvitedEmptyPassword", "dave@example.com", "", users.ErrInvalidCredentials},
		{"ImportedWrongPassword", "erin@example.com", wrong, users.ErrInvalidCredentials},
		{"ImportedOver72Bytes", "erin@example.com", testPassword + strings.Repeat("!", 72), users.ErrInvalidCredentials},
		{"RightPassword", "alice@example.com", testPassword, nil},
		{"RightPassword254ByteEmail", long, testPassword, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := f.secLogin(tc.id, tc.pw)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if tc.want != nil && err != nil && err.Error() != tc.want.Error() {
				t.Errorf("error text %q differs from %q: it could tell cases apart", err, tc.want)
			}
			if n != 1 {
				t.Errorf("%d bcrypt comparisons, want exactly 1", n)
			}
		})
	}
	if got := secStoredHash(t, f.Store, "erin@example.com"); got != string(h) {
		t.Errorf("failed logins changed an imported hash")
	}
	t.Run("UpdatePasswordWrongOld", func(t *testing.T) {
		u, err := f.M.GetByEmail(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		before := f.Compares.Load()
		if err := f.M.UpdatePassword(bg, u.ID, wrong, "a brand new password"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("got %v, want ErrInvalidCredentials", err)
		}
		if n := f.Compares.Load() - before; n != 1 {
			t.Errorf("%d bcrypt comparisons, want exactly 1", n)
		}
	})
	t.Run("Locked", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for _, id := range []string{"alice@example.com", "nobody@example.com"} {
			for range 3 {
				f.secLogin(id, wrong)
			}
			for _, pw := range []string{wrong, testPassword, "", strings.Repeat("p", 200)} {
				if n, err := f.secLogin(id, pw); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
					t.Errorf("locked %s, password of %d bytes: got %v after %d comparisons, want ErrAccountLocked after 0", id, len(pw), err, n)
				}
			}
		}
	})

	t.Run("WallClock", func(t *testing.T) {
		if testing.Short() {
			t.Skip("timing test skipped in -short mode")
		}
		// A real cost, so that bcrypt dominates and the ratio means something:
		// 10, or less where bcrypt is slow (under -race one hash at cost 10
		// takes over a second), keeping one hash above about 50ms.
		cost := 10
		start := time.Now()
		if _, err := bcrypt.GenerateFromPassword([]byte(testPassword), 6); err != nil {
			t.Fatal(err)
		}
		for per6 := time.Since(start); cost > 6 && per6<<(cost-6) > 200*time.Millisecond; {
			cost--
		}
		t.Logf("bcrypt cost %d", cost)
		f := newFixture(t, func(o *users.Options) { o.BcryptCost = cost; o.MaxFailedLogins = 100 })
		for _, e := range []string{"alice", "carol", "dave"} {
			f.mustCreate(t, users.NewUser{Email: e + "@example.com"})
		}
		f.mustCreate(t, users.NewUser{Email: "bob@example.com", Status: users.StatusSuspended})
		const runs, attempts = 11, 3
		cases := []struct {
			name string
			id   func(i int) string
			pw   string
		}{
			{"wrong password", func(int) string { return "alice@example.com" }, wrong},
			{"unknown email", func(i int) string { return fmt.Sprintf("nobody%d@example.com", i) }, wrong},
			{"empty password", func(int) string { return "carol@example.com" }, ""},
			{"200-character password", func(int) string { return "dave@example.com" }, strings.Repeat("p", 200)},
			{"suspended, right password", func(int) string { return "bob@example.com" }, testPassword},
		}
		f.secLogin("nobody@example.com", wrong) // warm up
		// Other processes share the machine: noise comes and goes, a leak does
		// not. An attempt within the band passes; all attempts are reported.
		for a := range attempts {
			times := make([][]time.Duration, len(cases))
			for i := range runs {
				for k := range cases { // interleaved and rotated, so drift in load hits all alike
					c := (i + k) % len(cases)
					tc := cases[c]
					start := time.Now()
					_, err := f.secLogin(tc.id(a*runs+i), tc.pw)
					times[c] = append(times[c], time.Since(start))
					if err == nil {
						t.Fatalf("%s: login succeeded", tc.name)
					}
				}
			}
			base := secMedian(times[0])
			var ratio float64
			for c, tc := range cases {
				med := secMedian(times[c])
				r := float64(med) / float64(base)
				if c == 1 {
					ratio = r
				}
				t.Logf("attempt %d: %-26s median %8v of %d, ratio to wrong password %.3f", a+1, tc.name, med.Round(time.Microsecond), runs, r)
			}
			if ratio >= 0.8 && ratio <= 1.25 {
				return
			}
			if a == attempts-1 {
				t.Errorf("unknown email vs wrong password: ratio of medians %.3f, want within 0.8-1.25 (in any of %d attempts)", ratio, attempts)
			}
		}
	})
}

// Item 7: throttling per identifier, stored, atomic, and free of bcrypt when locked.
func TestSecurity_Throttle(t *testing.T) {
	bg := context.Background()
	const wrong = "not the password"
	t.Run("DefaultTenLocks", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com", Username: "alice"})
		for i := range 10 {
			if _, err := f.secLogin("alice@example.com", wrong); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("failure %d: got %v, want ErrInvalidCredentials", i+1, err)
			}
		}
		for _, tc := range []struct{ id, pw string }{
			{"alice@example.com", testPassword}, {"alice@example.com", wrong}, {"alice", testPassword}, {" ALICE@example.com ", testPassword},
		} {
			if n, err := f.secLogin(tc.id, tc.pw); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("Login(%q) after 10 failures: got %v after %d comparisons, want ErrAccountLocked after 0", tc.id, err, n)
			}
		}
	})
	t.Run("NineDoNotLock", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.mustLogin(t, "alice@example.com", testPassword)
	})
	t.Run("UnknownIdentifiersLockToo", func(t *testing.T) {
		f := newFixture(t, nil)
		for _, id := range []string{"nobody@example.com", "nobody", "not an email@@"} {
			for range 10 {
				if _, err := f.secLogin(id, wrong); !errors.Is(err, users.ErrInvalidCredentials) {
					t.Fatalf("%q: got %v before the lock", id, err)
				}
			}
			if n, err := f.secLogin(id, wrong); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("unknown %q after 10 failures: got %v after %d comparisons, want ErrAccountLocked after 0", id, err, n)
			}
		}
	})
	t.Run("SuccessResets", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for round := range 3 {
			for range 9 {
				f.secLogin("alice@example.com", wrong)
			}
			f.mustLogin(t, "alice@example.com", testPassword)
			a, err := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID))
			if err != nil {
				t.Fatal(err)
			}
			if a.Failures != 0 {
				t.Fatalf("round %d: %d failures counted after a success, want 0", round, a.Failures)
			}
		}
	})
	t.Run("WindowEnds", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.FailedLoginWindow = time.Hour })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.Clock.Advance(time.Hour)
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.mustLogin(t, "alice@example.com", testPassword)
	})
	t.Run("SurvivesRestart", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 10 {
			f.secLogin("alice@example.com", wrong)
			f.secLogin("nobody@example.com", wrong)
		}
		var compares atomic.Int64
		m2 := secManager(t, f.Store, f.Clock, &compares, nil) // a restarted process
		for _, id := range []string{"alice@example.com", "nobody@example.com"} {
			if _, err := m2.Login(bg, id, testPassword); !errors.Is(err, users.ErrAccountLocked) {
				t.Errorf("%s after a restart: got %v, want ErrAccountLocked", id, err)
			}
		}
		if n := compares.Load(); n != 0 {
			t.Errorf("%d comparisons while locked, want 0", n)
		}
	})
	t.Run("LockEndsAfterLockoutDuration", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.LockoutDuration = 15 * time.Minute })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 10 {
			f.secLogin("alice@example.com", wrong)
		}
		f.Clock.Advance(15*time.Minute - time.Nanosecond)
		if _, err := f.secLogin("alice@example.com", testPassword); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("1ns before the lock ends: got %v, want ErrAccountLocked", err)
		}
		f.Clock.Advance(time.Nanosecond)
		f.mustLogin(t, "alice@example.com", testPassword)
	})
	t.Run("DefaultLockoutIs15Minutes", func(t *testing.T) {
		f := newFixture(t, nil)
		for range 10 {
			f.secLogin("nobody@example.com", wrong)
		}
		f.Clock.Advance(15*time.Minute - time.Nanosecond)
		if _, err := f.secLogin("nobody@example.com", wrong); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("1ns before 15 minutes: got %v, want ErrAccountLocked", err)
		}
		f.Clock.Advance(time.Nanosecond)
		if n, err := f.secLogin("nobody@example.com", wrong); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
			t.Fatalf("after 15 minutes: got %v after %d comparisons, want ErrInvalidCredentials after 1", err, n)
		}
	})
	t.Run("ConcurrentFailuresCountExactly", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		var wg sync.WaitGroup
		var locked atomic.Int64
		for range 100 {
			wg.Go(func() {
				_, err := f.M.Login(bg, "alice@example.com", wrong)
				switch {
				case errors.Is(err, users.ErrAccountLocked):
					locked.Add(1)
				case !errors.Is(err, users.ErrInvalidCredentials):
					t.Errorf("concurrent wrong login: %v", err)
				}
			})
		}
		wg.Wait()
		a, err := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if a.Failures != 100 || locked.Load() != 0 {
			t.Fatalf("100 concurrent wrong logins: Failures = %d (%d refused as locked), want exactly 100", a.Failures, locked.Load())
		}
		if n, err := f.secLogin("alice@example.com", testPassword); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
			t.Fatalf("after 100 failures with MaxFailedLogins 100: got %v after %d comparisons, want ErrAccountLocked after 0", err, n)
		}
	})
	t.Run("MaxFailedLoginsBound", func(t *testing.T) {
		for _, n := range []int{101, 1000, -1} {
			_, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: n})
			wantField(t, err, "options.MaxFailedLogins")
		}
		if _, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 100}); err != nil {
			t.Fatalf("MaxFailedLogins 100: %v", err)
		}
	})
}

// Item 8: bcrypt work is bounded, waits honour ctx, and ValidateToken never waits for it.
func TestSecurity_HashConcurrencyBound(t *testing.T) {
	bg := context.Background()
	t.Run("AtMostMaxConcurrentHashes", func(t *testing.T) {
		for _, limit := range []int{1, 2, 0} {
			want := limit
			if want == 0 {
				want = runtime.GOMAXPROCS(0)
			}
			f := newFixture(t, func(o *users.Options) { o.MaxConcurrentHashes = limit })
			f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
			var cur, peak atomic.Int64
			// The hook runs inside the hashing slot: while it sleeps it holds one.
			users.SetCompareHook(f.M, func() {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				cur.Add(-1)
			})
			var wg sync.WaitGroup
			for range 8 * want {
				wg.Go(func() {
					if _, err := f.M.Login(bg, "alice@example.com", testPassword); err != nil {
						t.Errorf("Login: %v", err)
					}
				})
			}
			wg.Wait()
			if got := peak.Load(); got > int64(want) {
				t.Errorf("MaxConcurrentHashes %d: %d comparisons ran at once, want at most %d", limit, got, want)
			}
			t.Logf("MaxConcurrentHashes %d: at most %d comparisons at once", limit, peak.Load())
		}
	})
	t.Run("WaitHonoursContext", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxConcurrentHashes = 1 })
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		entered, release := make(chan struct{}), make(chan struct{})
		var first sync.Once
		users.SetCompareHook(f.M, func() {
			f.Compares.Add(1)
			first.Do(func() {
				close(entered)
				<-release
			})
		})
		done := make(chan error)
		go func() {
			_, err := f.M.Login(bg, "alice@example.com", testPassword)
			done <- err
		}()
		<-entered // the only slot is taken
		for _, op := range []struct {
			name string
			run  func(ctx context.Context) error
		}{
			{"Login", func(ctx context.Context) error {
				_, err := f.M.Login(ctx, "alice@example.com", testPassword)
				return err
			}},
			{"Create", func(ctx context.Context) error {
				_, err := f.M.Create(ctx, users.NewUser{Email: "bob@example.com", Password: testPassword})
				return err
			}},
			{"UpdatePassword", func(ctx context.Context) error {
				return f.M.UpdatePassword(ctx, u.ID, testPassword, "a brand new password")
			}},
		} {
			ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
			start := time.Now()
			err := op.run(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s while the only hashing slot is held: got %v, want context.DeadlineExceeded", op.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s returned %v after its deadline", op.name, d)
			}
		}
		if n := f.Compares.Load(); n != 1 {
			t.Errorf("%d comparisons, want only the one holding the slot", n)
		}
		if _, err := f.M.GetByEmail(bg, "bob@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("a Create that gave up waiting stored a user: %v", err)
		}
		// The login holding the slot has reserved its attempt (counted until
		// its password proves right); the ones that gave up reserved nothing.
		if a, _ := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID)); a.Failures != 1 {
			t.Errorf("%d attempts counted while one login holds the slot and others gave up waiting, want 1", a.Failures)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("the login holding the slot: %v", err)
		}
		if a, _ := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID)); !a.IsZero() {
			t.Errorf("after the right password the throttle entry is %+v, want none", a)
		}
		f.mustLogin(t, "alice@example.com", testPassword) // the password did not change
	})
	t.Run("ValidateTokenWhileLoginsQueue", func(t *testing.T) {
		// A real cost (bcrypt dominates) and the default bound (GOMAXPROCS).
		f := newFixture(t, func(o *users.Options) { o.BcryptCost = 10 })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		f.mustCreate(t, users.NewUser{Email: "bob@example.com"})
		s := f.mustLogin(t, "alice@example.com", testPassword)

		measure := func(n int) []time.Duration {
			lat := make([]time.Duration, 0, n)
			for range n {
				start := time.Now()
				_, err := f.M.ValidateToken(bg, s.Token)
				lat = append(lat, time.Since(start))
				if err != nil {
					t.Fatalf("ValidateToken: %v", err)
				}
			}
			slices.Sort(lat)
			return lat
		}
		idle := measure(200)

		f.Compares.Store(0)
		qctx, cancel := context.WithCancel(bg)
		defer cancel()
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				_, err := f.M.Login(qctx, "bob@example.com", testPassword)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("queued Login: %v", err)
				}
			})
		}
		for f.Compares.Load() == 0 { // the first comparisons have started
			time.Sleep(100 * time.Microsecond)
		}
		// Requests arriving one a millisecond for at least 300ms: several
		// bcrypts finish and start meanwhile.
		var busy []time.Duration
		for start := time.Now(); time.Since(start) < 300*time.Millisecond || len(busy) < 100; {
			time.Sleep(time.Millisecond)
			busy = append(busy, measure(1)...)
		}
		slices.Sort(busy)
		doneAtEnd := f.Compares.Load()
		cancel() // the queued logins give up; those hashing finish
		wg.Wait()
		if doneAtEnd >= 100 {
			t.Fatalf("all 100 logins had started comparing before the measurement ended: no queue was measured")
		}
		pct := func(l []time.Duration, p int) time.Duration { return l[(len(l)-1)*p/100] }
		t.Logf("ValidateToken, no load:               median %v, p90 %v, max %v",
			pct(idle, 50), pct(idle, 90), idle[len(idle)-1])
		t.Logf("ValidateToken, 100 logins at cost 10: median %v, p90 %v, max %v over %d calls (GOMAXPROCS %d; %d of the 100 comparisons had started at the end)",
			pct(busy, 50), pct(busy, 90), busy[len(busy)-1], len(busy), runtime.GOMAXPROCS(0), doneAtEnd)
		if med := pct(busy, 50); med > 10*time.Millisecond {
			t.Errorf("median ValidateToken latency %v while logins queue, want well under one bcrypt (< 10ms)", med)
		}
	})
}

// Item 9: 256-bit tokens from the random source, stored only as SHA-256.
func TestSecurity_TokenEntropy(t *testing.T) {
	bg := context.Background()
	f := newFixture(t, nil)
	f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	const n = 1000
	seen := make(map[string]bool, n)
	var ones [256]int
	check := func(what, tok string) []byte {
		t.Helper()
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("%s %q: decodes to %d bytes (%v), want 32", what, tok, len(raw), err)
		}
		if seen[tok] {
			t.Fatalf("%s %q issued twice", what, tok)
		}
		seen[tok] = true
		for i := range 256 {
			ones[i] += int(raw[i/8] >> (i % 8) & 1)
		}
		return raw
	}
	var sessions []string
	for i := range n {
		if i%10 == 0 { // a tenth are session tokens: logins are slow under -race
			s := f.mustLogin(t, "alice@example.com", testPassword)
			check("session token", s.Token)
			sessions = append(sessions, s.Token)
			continue
		}
		d, err := f.M.RequestPasswordReset(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		tok := d.Token
		raw := check("reset token", tok)
		if _, err := f.Store.GetToken(bg, sha256Sum(tok), users.PurposePasswordReset, f.Clock.Now()); err != nil {
			t.Fatalf("the store does not know the reset token by SHA-256 of its string: %v", err)
		}
		if _, err := f.Store.GetToken(bg, sha256Sum(string(raw)), users.PurposePasswordReset, f.Clock.Now()); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("GetToken by SHA-256 of the raw bytes: %v, want ErrNotFound", err)
		}
	}
	// Every bit position is set in about half the tokens: 1000 fair coins stay
	// within 400-600 with probability 1-3e-10 each.
	for i, c := range ones {
		if c < 400 || c > 600 {
			t.Errorf("bit %d set in %d of %d tokens: not uniformly random", i, c, n)
		}
	}
	for _, tok := range sessions[:10] {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		s, _, err := f.Store.GetSession(bg, sha256Sum(tok))
		if err != nil {
			t.Fatalf("the store does not know the session by SHA-256 of its token string: %v", err)
		}
		if !bytes.Equal(s.TokenHash, sha256Sum(tok)) {
			t.Fatalf("TokenHash is not SHA-256 of the token string")
		}
		for _, k := range [][]byte{raw, []byte(tok), sha256Sum(string(raw))} {
			if _, _, err := f.Store.GetSession(bg, k); !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("the store finds the session by another key than SHA-256 of the token string: %v", err)
			}
		}
	}
}

// Item 9: absolute and idle timeouts, at their edges.
func TestSecurity_SessionTimeouts(t *testing.T) {
	bg := context.Background()
	const ttl, idle = time.Hour, 10 * time.Minute
	valid := func(t *testing.T, f *Fixture, tok, when string, want bool) {
		t.Helper()
		_, err := f.M.ValidateToken(bg, tok)
		switch {
		case want && err != nil:
			t.Fatalf("%s: %v, want valid", when, err)
		case !want && !errors.Is(err, users.ErrInvalidToken):
			t.Fatalf("%s: %v, want ErrInvalidToken", when, err)
		}
	}
	setup := func(t *testing.T, idleTimeout time.Duration) (*Fixture, *users.Session) {
		f := newFixture(t, func(o *users.Options) { o.SessionTTL = ttl; o.SessionIdleTimeout = idleTimeout })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		return f, f.mustLogin(t, "alice@example.com", testPassword)
	}
	t.Run("Absolute", func(t *testing.T) {
		f, s := setup(t, 0)
		if got := s.ExpiresAt.Sub(s.CreatedAt); got != ttl {
			t.Fatalf("ExpiresAt - CreatedAt = %v, want %v", got, ttl)
		}
		f.Clock.Advance(ttl - time.Nanosecond)
		valid(t, f, s.Token, "TTL-1ns", true)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL+1ns", false)
	})
	t.Run("Idle", func(t *testing.T) {
		f, s := setup(t, idle)
		f.Clock.Advance(idle - time.Nanosecond)
		valid(t, f, s.Token, "idle-1ns after login", true) // activity: the idle clock restarts
		f.Clock.Advance(idle - time.Nanosecond)
		valid(t, f, s.Token, "idle-1ns after the last activity", true)
		f.Clock.Advance(idle)
		valid(t, f, s.Token, "idle after the last activity", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "idle+1ns after the last activity", false)

		s2 := f.mustLogin(t, "alice@example.com", testPassword)
		f.Clock.Advance(idle + time.Nanosecond)
		valid(t, f, s2.Token, "idle+1ns after login", false)
	})
	t.Run("IdleNeverLate", func(t *testing.T) {
		// Activity is recorded at most once a minute; a validation sooner than
		// that after the last recorded one may let the session end up to a
		// minute early, never late.
		f, s := setup(t, idle)
		f.Clock.Advance(30 * time.Second)
		valid(t, f, s.Token, "30s after login", true)
		f.Clock.Advance(idle - 30*time.Second)
		valid(t, f, s.Token, "idle after the last recorded activity", false)
	})
	t.Run("ActivityNeverExtendsPastAbsolute", func(t *testing.T) {
		f, s := setup(t, idle)
		var elapsed time.Duration
		for elapsed+9*time.Minute < ttl {
			f.Clock.Advance(9 * time.Minute)
			elapsed += 9 * time.Minute
			valid(t, f, s.Token, fmt.Sprintf("active at %v", elapsed), true)
		}
		f.Clock.Advance(ttl - elapsed - time.Nanosecond)
		got, err := f.M.ValidateToken(bg, s.Token)
		if err != nil {
			t.Fatalf("active at TTL-1ns: %v", err)
		}
		if !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("activity moved ExpiresAt from %v to %v", s.ExpiresAt, got.ExpiresAt)
		}
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL, active a moment ago", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL+1ns, active a moment ago", false)
		if ss, err := f.M.Sessions(bg, s.UserID); err != nil || len(ss) != 0 {
			t.Fatalf("Sessions after the absolute limit: %d, %v; want none", len(ss), err)
		}
	})
}

// secTouchCounter counts the LastSeenAt writes ValidateToken makes, and those
// that found the session gone. After each GetSession it waits pause, widening
// the window between ValidateToken's read and its write.
type secTouchCounter struct {
	users.Store
	touches, gone atomic.Int64
	pause         atomic.Int64 // nanoseconds
}

func (c *secTouchCounter) GetSession(ctx context.Context, h []byte) (*users.SessionRecord, *users.UserRecord, error) {
	s, u, err := c.Store.GetSession(ctx, h)
	if d := time.Duration(c.pause.Load()); d > 0 {
		time.Sleep(d)
	}
	return s, u, err
}

func (c *secTouchCounter) TouchSession(ctx context.Context, h []byte, seen time.Time) error {
	err := c.Store.TouchSession(ctx, h, seen)
	c.touches.Add(1)
	if errors.Is(err, users.ErrNotFound) {
		c.gone.Add(1)
	}
	return err
}

// Item 10: a LastSeenAt write racing with an ending never brings a session back.
func TestSecurity_NoResurrection(t *testing.T) {
	bg := context.Background()
	rounds := 1000
	if testing.Short() {
		rounds = 200
	}
	clock := NewClock()
	store := &secTouchCounter{Store: users.NewMemoryStore()}
	m := secManager(t, store, clock, nil, func(o *users.Options) {
		o.SessionIdleTimeout = 10 * time.Minute
		o.MaxFailedLogins = 100
	})
	passwords := [2]string{testPassword, "another good password"}
	alice, err := m.Create(bg, users.NewUser{Email: "alice@example.com", Password: passwords[0]})
	if err != nil {
		t.Fatal(err)
	}
	// Sessions come from magic links and users to remove are imported, so
	// that bcrypt (slow under -race) runs only where the ending needs it.
	imported, err := bcrypt.GenerateFromPassword([]byte(testPassword), 4)
	if err != nil {
		t.Fatal(err)
	}
	current, updateTook := 0, time.Duration(0)
	kinds := []string{"Logout", "LogoutAll", "UpdatePassword", "Remove"}
	validWon := make(map[string]int)
	for i := range rounds {
		kind := kinds[i%len(kinds)]
		userID, email := alice.ID, alice.Email
		if kind == "Remove" {
			email = fmt.Sprintf("r%d@example.com", i)
			u, err := m.Create(bg, users.NewUser{Email: email, PasswordHash: string(imported)})
			if err != nil {
				t.Fatal(err)
			}
			userID = u.ID
		}
		link, err := m.RequestMagicLink(bg, email)
		if err != nil {
			t.Fatalf("round %d: RequestMagicLink: %v", i, err)
		}
		s, err := m.LoginWithMagicLink(bg, link.Token)
		if err != nil {
			t.Fatalf("round %d: LoginWithMagicLink: %v", i, err)
		}
		clock.Advance(2 * time.Minute) // the next ValidateToken writes LastSeenAt
		// Vary the interleaving: no pause, or one as long as a part of the
		// ending (UpdatePassword runs two bcrypts at cost 4 first).
		store.pause.Store(int64([]time.Duration{0, 0, 20 * time.Microsecond, 300 * time.Microsecond, 3 * time.Millisecond}[i/len(kinds)%5]))

		var op func() error
		switch kind {
		case "Logout":
			op = func() error { return m.Logout(bg, s.Token) }
		case "LogoutAll":
			op = func() error { return m.LogoutAll(bg, userID) }
		case "UpdatePassword":
			next := 1 - current
			op = func() error { return m.UpdatePassword(bg, userID, passwords[current], passwords[next]) }
		case "Remove":
			op = func() error { return m.Remove(bg, userID) }
		}
		// UpdatePassword writes only after its two bcrypts: start ValidateToken
		// near that write, at a fraction of how long the last one took.
		var lead time.Duration
		if kind == "UpdatePassword" {
			lead = updateTook * time.Duration(80+5*(i/len(kinds)%6)) / 100
		}
		start := make(chan struct{})
		var vErr, opErr error
		var opTook time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { <-start; time.Sleep(lead); _, vErr = m.ValidateToken(bg, s.Token) })
		wg.Go(func() { <-start; t0 := time.Now(); opErr = op(); opTook = time.Since(t0) })
		close(start)
		wg.Wait()
		if opErr != nil {
			t.Fatalf("round %d: %s: %v", i, kind, opErr)
		}
		if kind == "UpdatePassword" {
			current = 1 - current
			updateTook = opTook
		}
		switch {
		case vErr == nil:
			validWon[kind]++
		case !errors.Is(vErr, users.ErrInvalidToken):
			t.Fatalf("round %d: racing ValidateToken: %v", i, vErr)
		}
		store.pause.Store(0)
		if _, err := m.ValidateToken(bg, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("round %d: the session is usable after %s raced with ValidateToken: %v", i, kind, err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := m.ValidateToken(bg, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("round %d: the session is usable later after %s: %v", i, kind, err)
		}
		if _, _, err := store.GetSession(bg, sha256Sum(s.Token)); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("round %d: the store still holds the session after %s: %v", i, kind, err)
		}
	}
	if store.touches.Load() == 0 {
		t.Fatal("ValidateToken never wrote LastSeenAt: the race under test never happened")
	}
	t.Logf("%d rounds: ValidateToken answered valid before the ending in %v; %d LastSeenAt writes, %d found the session already gone",
		rounds, validWon, store.touches.Load(), store.gone.Load())
}

// secSecrets is what must never reach a store or an error: passwords (as given
// and as normalised) and tokens (as strings and as their raw bytes, in the
// usual encodings).
type secSecrets struct {
	forms [][]byte
	names []string
}

func (s *secSecrets) password(pw string) {
	s.add("password "+secShort(pw), []byte(pw))
	if n := norm.NFKC.String(pw); n != pw {
		s.add("NFKC of password "+secShort(pw), []byte(n))
	}
}

func (s *secSecrets) token(tok string) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	s.add("token "+tok, []byte(tok))
	if err == nil {
		s.add("raw bytes of token "+tok, raw)
		s.add("hex of token "+tok, []byte(hex.EncodeToString(raw)))
		s.add("std base64 of token "+tok, []byte(base64.StdEncoding.EncodeToString(raw)))
	}
}

func (s *secSecrets) add(name string, b []byte) {
	s.names = append(s.names, name)
	s.forms = append(s.forms, b)
}

// find returns the name of the first secret b contains, or "".
func (s *secSecrets) find(b []byte) string {
	for i, f := range s.forms {
		if bytes.Contains(b, f) {
			return s.names[i]
		}
	}
	return ""
}

func secShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…", s[:40])
	}
	return fmt.Sprintf("%q", s)
}

// secFlows runs every flow that handles a password or a token through m and
// returns the secrets it used, the errors it got, and one session token hash
// that must be in the store (a positive control for the scans).
func secFlows(t *testing.T, m *users.Manager, clock *Clock) (*secSecrets, []error, []byte) {
	t.Helper()
	bg := context.Background()
	sec := &secSecrets{}
	var errs []error
	wantErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		errs = append(errs, err)
	}
	mustOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	pw1 := "\u00dcn\u00efc\u00f6d\u00e9 \ufb01nal p\u00e4ssw\u00f6rd e\u0301t\u00e9"
	pw2, pw3, pw4, pw5 := "second secret phrase 2", "third secret phrase 3", "\u5bc6\u7801\u5b89\u5168\u5bc6\u7801\u5b89\u5168\u5bc6\u7801", "fifth secret phrase 5"
	wrong, refused := "wrong guess of a password", "refused\x00secret password"
	imported := "imported legacy secret"
	for _, pw := range []string{pw1, pw2, pw3, pw4, pw5, wrong, refused, imported} {
		sec.password(pw)
	}

	alice, err := m.Create(bg, users.NewUser{Email: "alice@example.com", Username: "alice", Password: pw1})
	mustOK("Create", err)
	s1, err := m.Login(bg, "alice", pw1)
	mustOK("Login", err)
	sec.token(s1.Token)
	clock.Advance(2 * time.Minute)
	_, err = m.ValidateToken(bg, s1.Token)
	mustOK("ValidateToken", err)
	_, err = m.Login(bg, "alice@example.com", wrong)
	wantErr("Login with a wrong password", err)
	_, err = m.Login(bg, "mallory@example.com", wrong)
	wantErr("Login of nobody", err)
	_, err = m.Create(bg, users.NewUser{Email: "x@example.com", Password: refused})
	wantErr("Create with a control character", err)
	_, err = m.Create(bg, users.NewUser{Email: "alice.b@example.com", Password: "alice.b@example.com"})
	wantErr("Create with the email as password", err)
	sec.password("alice.b@example.com")

	rd, err := m.RequestPasswordReset(bg, "alice@example.com")
	mustOK("RequestPasswordReset", err)
	rt := rd.Token
	sec.token(rt)
	wantErr("ResetPassword refused", m.ResetPassword(bg, rt, refused))
	mustOK("ResetPassword", m.ResetPassword(bg, rt, pw2))
	wantErr("ResetPassword again", m.ResetPassword(bg, rt, pw3))
	_, err = m.ValidateToken(bg, s1.Token)
	wantErr("ValidateToken after reset", err)
	rd2, err := m.RequestPasswordReset(bg, "alice@example.com") // left outstanding
	mustOK("RequestPasswordReset", err)
	sec.token(rd2.Token)

	s2, err := m.Login(bg, "alice@example.com", pw2)
	mustOK("Login", err)
	sec.token(s2.Token)
	mustOK("Logout", m.Logout(bg, s2.Token))
	wantErr("Logout again", m.Logout(bg, s2.Token))
	_, err = m.ValidateToken(bg, s2.Token)
	wantErr("ValidateToken after Logout", err)

	md, err := m.RequestMagicLink(bg, "alice@example.com")
	mustOK("RequestMagicLink", err)
	mt := md.Token
	sec.token(mt)
	s3, err := m.LoginWithMagicLink(bg, mt)
	mustOK("LoginWithMagicLink", err)
	sec.token(s3.Token)
	_, err = m.LoginWithMagicLink(bg, mt)
	wantErr("LoginWithMagicLink again", err)
	tampered := s3.Token[:20] + string('A'+(s3.Token[20]-'A'+1)%26) + s3.Token[21:]
	sec.token(tampered)
	_, err = m.ValidateToken(bg, tampered)
	wantErr("ValidateToken with a tampered token", err)
	_, err = m.ValidateToken(bg, s3.Token+"x")
	wantErr("ValidateToken with a longer token", err)

	vd, err := m.RequestEmailVerification(bg, alice.ID)
	mustOK("RequestEmailVerification", err)
	vt := vd.Token
	sec.token(vt)
	_, err = m.VerifyEmail(bg, vt)
	mustOK("VerifyEmail", err)
	_, err = m.VerifyEmail(bg, vt)
	wantErr("VerifyEmail again", err)

	_, it, err := m.Invite(bg, users.NewUser{Email: "bob@example.com"})
	mustOK("Invite", err)
	sec.token(it)
	_, err = m.AcceptInvitation(bg, it, refused)
	wantErr("AcceptInvitation refused", err)
	s4, err := m.AcceptInvitation(bg, it, pw4)
	mustOK("AcceptInvitation", err)
	sec.token(s4.Token)

	mustOK("UpdatePassword", m.UpdatePassword(bg, alice.ID, pw2, pw5))
	wantErr("UpdatePassword with a wrong old password", m.UpdatePassword(bg, alice.ID, wrong, pw3))
	wantErr("UpdatePassword refused", m.UpdatePassword(bg, alice.ID, pw5, refused))
	s5, err := m.Login(bg, "alice@example.com", pw5)
	mustOK("Login", err)
	sec.token(s5.Token)

	h, err := bcrypt.GenerateFromPassword([]byte(imported), 4)
	mustOK("bcrypt", err)
	_, err = m.Create(bg, users.NewUser{Email: "carol@example.com", PasswordHash: string(h)})
	mustOK("Create imported", err)
	_, err = m.Login(bg, "carol@example.com", wrong)
	wantErr("Login imported, wrong password", err)
	s6, err := m.Login(bg, "carol@example.com", imported) // upgrades the hash
	mustOK("Login imported", err)
	sec.token(s6.Token)
	return sec, errs, sha256Sum(s5.Token)
}

// secWalk calls visit with every string and byte slice or array reachable from
// v, reading unexported fields through reflect's read-only accessors.
func secWalk(v reflect.Value, seen map[[2]uintptr]bool, visit func([]byte)) {
	switch v.Kind() {
	case reflect.String:
		visit([]byte(v.String()))
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			visit(v.Bytes())
			return
		}
		for i := range v.Len() {
			secWalk(v.Index(i), seen, visit)
		}
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			visit(b)
			return
		}
		for i := range v.Len() {
			secWalk(v.Index(i), seen, visit)
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		k := [2]uintptr{v.Pointer(), reflect.ValueOf(v.Type()).Pointer()}
		if seen[k] {
			return
		}
		seen[k] = true
		secWalk(v.Elem(), seen, visit)
	case reflect.Interface:
		if !v.IsNil() {
			secWalk(v.Elem(), seen, visit)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		it := v.MapRange()
		for it.Next() {
			secWalk(it.Key(), seen, visit)
			secWalk(it.Value(), seen, visit)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			secWalk(v.Field(i), seen, visit)
		}
	}
}

// Item 11: no password or token in the store's bytes or in an error string.
func TestSecurity_NoSecretsInStore(t *testing.T) {
	checkErrs := func(t *testing.T, sec *secSecrets, errs []error) {
		t.Helper()
		for _, err := range errs {
			if name := sec.find([]byte(err.Error())); name != "" {
				t.Errorf("the error %q contains the %s", err, name)
			}
		}
		if len(errs) < 10 {
			t.Fatalf("bad test: only %d errors checked", len(errs))
		}
	}
	t.Run("MemoryStore", func(t *testing.T) {
		store, clock := users.NewMemoryStore(), NewClock()
		m := secManager(t, store, clock, nil, func(o *users.Options) { o.SessionIdleTimeout = time.Hour })
		sec, errs, liveHash := secFlows(t, m, clock)
		checkErrs(t, sec, errs)

		var scanned int
		var sawEmail, sawHash bool
		secWalk(reflect.ValueOf(store), map[[2]uintptr]bool{}, func(b []byte) {
			scanned++
			sawEmail = sawEmail || bytes.Contains(b, []byte("alice@example.com"))
			sawHash = sawHash || bytes.Contains(b, liveHash) || bytes.Contains(b, []byte(hex.EncodeToString(liveHash)))
			if name := sec.find(b); name != "" {
				t.Errorf("the memory store holds the %s (in a value of %d bytes)", name, len(b))
			}
		})
		if !sawEmail || !sawHash {
			t.Fatalf("the walk over the memory store missed known content (email %v, session hash %v): it proves nothing", sawEmail, sawHash)
		}
		t.Logf("scanned %d strings and byte slices in the memory store", scanned)
	})
	t.Run("BoltStore", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users.db")
		store, err := users.OpenBoltStore(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		clock := NewClock()
		m := secManager(t, store, clock, nil, func(o *users.Options) { o.SessionIdleTimeout = time.Hour })
		sec, errs, liveHash := secFlows(t, m, clock)
		checkErrs(t, sec, errs)
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte("alice@example.com")) || !bytes.Contains(raw, liveHash) {
			t.Fatal("the bbolt file lacks known content (the email, a session's hash): the scan proves nothing")
		}
		if name := sec.find(raw); name != "" {
			t.Errorf("the bbolt file (%d bytes) contains the %s", len(raw), name)
		}
	})
}

package users_test

// Passwords: normalised, never truncated, checked against a policy, hashed at
// a cost that holds, and imported hashes upgraded or reported.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 1: NFKC, the same on set and on check; case preserved.
func TestSecurity_NFKC(t *testing.T) {
	bg := t.Context()
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
			f.MustLogin(t, "a@example.com", tc.set)
			f.MustLogin(t, "a@example.com", tc.login)
		})
	}
	t.Run("LengthCountedAfterNFKC", func(t *testing.T) {
		f := newFixture(t, nil)
		// 8 characters after NFKC, 16 code points before: accepted.
		eight := strings.Repeat("e\u0301", 8)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: eight})
		f.MustLogin(t, "a@example.com", strings.Repeat("\u00e9", 8))
		// 7 characters after NFKC, 14 code points (21 bytes) before: refused.
		_, err := f.M.Create(bg, users.NewUser{Email: "b@example.com", Password: strings.Repeat("e\u0301", 7)})
		secWantPasswordRefused(t, err, "7 characters written as 14 code points")
		// 3 code points that NFKC makes 9 characters: accepted.
		f.mustCreate(t, users.NewUser{Email: "c@example.com", Password: "\ufb03\ufb03\ufb03"})
		f.MustLogin(t, "c@example.com", "ffiffiffi")
	})
	t.Run("CasePreserved", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: "Correct Horse Battery"})
		f.MustLogin(t, "a@example.com", "Correct Horse Battery")
		for _, pw := range []string{"correct horse battery", "CORRECT HORSE BATTERY", "Correct horse battery"} {
			if _, err := f.M.Login(bg, "a@example.com", pw); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Errorf("Login(%q) against %q: got %v, want ErrInvalidCredentials", pw, "Correct Horse Battery", err)
			}
		}
	})
}

// Item 2: at least 8 characters, up to 128 of any script, nothing truncated,
// control characters refused.
func TestSecurity_LengthAndTruncation(t *testing.T) {
	bg := t.Context()
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
				f.MustLogin(t, "a@example.com", pw)
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
		f.MustLogin(t, "a@example.com", a72)
		f.MustLogin(t, "b@example.com", a72+"X")
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
			f.MustLogin(t, email, pw)
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
	bg := t.Context()
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
	bg := t.Context()
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
		store, clock := users.NewMemoryStore(), storetest.NewClock()
		m4 := secManager(t, store, clock, nil, nil)
		m5 := secManager(t, store, clock, nil, func(o *users.Options) { o.BcryptCost = 5 })
		if _, err := m4.Create(bg, users.NewUser{Email: "a@example.com", Password: storetest.Password}); err != nil {
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
		if _, err := m5.Login(bg, "a@example.com", storetest.Password); err != nil {
			t.Fatal(err)
		}
		h5 := secStoredHash(t, store, "a@example.com")
		if got := secOurCost(t, h5); got != 5 {
			t.Fatalf("cost after a login with cost 5 = %d, want 5", got)
		}
		// At the same cost nothing is rewritten.
		if _, err := m5.Login(bg, "a@example.com", storetest.Password); err != nil {
			t.Fatal(err)
		}
		if got := secStoredHash(t, store, "a@example.com"); got != h5 {
			t.Fatal("a login at the hash's own cost rewrote the hash")
		}
		// "Another cost" includes a lower one: the configured cost rules.
		if _, err := m4.Login(bg, "a@example.com", storetest.Password); err != nil {
			t.Fatal(err)
		}
		if got := secOurCost(t, secStoredHash(t, store, "a@example.com")); got != 4 {
			t.Fatalf("cost after a login with cost 4 = %d, want 4", got)
		}
	})
}

// Item 5: importing bcrypt hashes made elsewhere; upgraded on first login.
func TestSecurity_ImportBcrypt(t *testing.T) {
	bg := t.Context()
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
				f.MustLogin(t, email, pw) // the upgraded hash verifies the same password
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
		f.MustLogin(t, "a@example.com", p72)
	})
	// A hash in this package's own format, as another of its stores exports it,
	// is stored as it is and verifies the same password; it is re-hashed at a
	// login only when its cost is not the Manager's.
	t.Run("OwnFormat", func(t *testing.T) {
		from := newFixture(t, func(o *users.Options) { o.BcryptCost = 4 })
		long := strings.Repeat("été ", 30) // 150 bytes: past bcrypt's 72
		for i, pw := range []string{storetest.Password, long} {
			email := fmt.Sprintf("u%d@example.com", i)
			from.mustCreate(t, users.NewUser{Email: email, Password: pw})
			ours := secStoredHash(t, from.Store, email)
			for _, cost := range []int{4, 5} {
				f := newFixture(t, func(o *users.Options) { o.BcryptCost = cost })
				u := f.mustCreate(t, users.NewUser{Email: email, PasswordHash: ours})
				if got := secStoredHash(t, f.Store, email); got != ours {
					t.Fatalf("stored %q, want the exported hash unchanged", got)
				}
				if st, err := f.M.LockState(bg, u.ID); err != nil || st.ImportedHash {
					t.Errorf("LockState of a user with a hash of our format: %+v, %v; want no ImportedHash", st, err)
				}
				if n, err := f.secLogin(email, pw[:len(pw)-1]+"!"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
					t.Fatalf("wrong password: got %v after %d comparisons", err, n)
				}
				if n, err := f.secLogin(email, pw); err != nil || n != 1 {
					t.Fatalf("cost %d: Login with the exported user's password: got %v after %d comparisons, want success after 1", cost, err, n)
				}
				got := secStoredHash(t, f.Store, email)
				if cost == 4 && got != ours {
					t.Errorf("a login at the hash's own cost re-hashed it")
				}
				if c := secOurCost(t, got); c != cost {
					t.Errorf("after a login at cost %d the hash has cost %d", cost, c)
				}
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		f := newFixture(t, nil)
		good := mk(t, "$2a$", "old system p4ss")
		for _, h := range []string{
			"$2x$" + good[4:], "$2$" + good[4:], "$1$abcdefgh$abcdefghijklmnopqrstuv", good[:59], good + "A",
			"$argon2d$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "plain text", // Argon2d: no module for it
			// This package's marker on anything but a whole bcrypt hash of the kind
			// it makes.
			users.HashPrefix, users.HashPrefix + "plain text", users.HashPrefix + good[:59], users.HashPrefix + good + "A",
			users.HashPrefix + "$2b$" + good[4:], users.HashPrefix + users.HashPrefix + good,
		} {
			_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: h})
			wantField(t, err, "password_hash")
		}
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: storetest.Password, PasswordHash: good})
		wantField(t, err, "password_hash")
	})
}

// Item 18: an imported hash that verifies a password this package cannot
// re-hash (a tab, bytes that are not UTF-8) is reported, never truncated.
func TestSecurity_ImportedHashNotUpgradable(t *testing.T) {
	bg := t.Context()
	f := newFixture(t, nil)
	for i, pw := range []string{"old\tpass word", "caf\xe9 au lait", "ordinary old password"} {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
		if err != nil {
			t.Fatal(err)
		}
		u := f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: string(h)})
		st, err := f.M.LockState(bg, u.ID)
		if err != nil || !st.ImportedHash || st.ImportedHashNotUpgradable {
			t.Fatalf("%q before any login: LockState %+v, %v; want ImportedHash only", pw, st, err)
		}
		f.MustLogin(t, u.Email, pw)
		st, _ = f.M.LockState(bg, u.ID)
		upgradable := utf8.ValidString(pw) && !strings.ContainsAny(pw, "\t")
		if upgradable {
			if st.ImportedHash || st.ImportedHashNotUpgradable {
				t.Errorf("%q after a login: LockState %+v; want the hash upgraded", pw, st)
			}
			continue
		}
		if !st.ImportedHash || !st.ImportedHashNotUpgradable {
			t.Errorf("%q after a login: LockState %+v; want ImportedHash and ImportedHashNotUpgradable", pw, st)
		}
		if secStoredHash(t, f.Store, u.Email) != string(h) {
			t.Errorf("%q: the imported hash changed", pw)
		}
		f.MustLogin(t, u.Email, pw) // still logs in
		if _, err := f.M.Login(bg, u.Email, pw[:len(pw)-1]); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("%q without its last byte: %v, want ErrInvalidCredentials", pw, err)
		}
		if err := f.M.UpdatePassword(bg, u.ID, pw, "a brand new password"); err != nil {
			t.Fatalf("UpdatePassword from %q: %v", pw, err)
		}
		if st, _ := f.M.LockState(bg, u.ID); st.ImportedHash || st.ImportedHashNotUpgradable {
			t.Errorf("%q after a password change: LockState %+v; want neither flag", pw, st)
		}
	}
}

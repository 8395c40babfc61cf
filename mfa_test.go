package users_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestRFC6238_Vectors checks github.com/pquerna/otp, used with the options this
// package passes it, against every vector of RFC 6238 Appendix B (8 digits;
// SHA-1, SHA-256 and SHA-512 with their seeds). TestTOTPStep_RFC6238 checks
// the package's own 6-digit SHA-1 verification against the same table.
func TestRFC6238_Vectors(t *testing.T) {
	seeds := map[otp.Algorithm]string{
		otp.AlgorithmSHA1:   "12345678901234567890",
		otp.AlgorithmSHA256: "12345678901234567890123456789012",
		otp.AlgorithmSHA512: "1234567890123456789012345678901234567890123456789012345678901234",
	}
	vectors := []struct {
		unix  int64
		codes map[otp.Algorithm]string
	}{
		{59, map[otp.Algorithm]string{otp.AlgorithmSHA1: "94287082", otp.AlgorithmSHA256: "46119246", otp.AlgorithmSHA512: "90693936"}},
		{1111111109, map[otp.Algorithm]string{otp.AlgorithmSHA1: "07081804", otp.AlgorithmSHA256: "68084774", otp.AlgorithmSHA512: "25091201"}},
		{1111111111, map[otp.Algorithm]string{otp.AlgorithmSHA1: "14050471", otp.AlgorithmSHA256: "67062674", otp.AlgorithmSHA512: "99943326"}},
		{1234567890, map[otp.Algorithm]string{otp.AlgorithmSHA1: "89005924", otp.AlgorithmSHA256: "91819424", otp.AlgorithmSHA512: "93441116"}},
		{2000000000, map[otp.Algorithm]string{otp.AlgorithmSHA1: "69279037", otp.AlgorithmSHA256: "90698825", otp.AlgorithmSHA512: "38618901"}},
		{20000000000, map[otp.Algorithm]string{otp.AlgorithmSHA1: "65353130", otp.AlgorithmSHA256: "77737706", otp.AlgorithmSHA512: "47863826"}},
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	for _, v := range vectors {
		at := time.Unix(v.unix, 0).UTC()
		for alg, want := range v.codes {
			secret := b32.EncodeToString([]byte(seeds[alg]))
			opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: alg}
			if got, err := totp.GenerateCodeCustom(secret, at, opts); err != nil || got != want {
				t.Errorf("%v T=%d: code %q, %v; want %q", alg, v.unix, got, err, want)
			}
			if ok, err := totp.ValidateCustom(want, secret, at, opts); err != nil || !ok {
				t.Errorf("%v T=%d: ValidateCustom(%q) = %v, %v; want true", alg, v.unix, want, ok, err)
			}
			if alg == otp.AlgorithmSHA1 {
				six := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: alg}
				if ok, err := totp.ValidateCustom(want[2:], secret, at, six); err != nil || !ok {
					t.Errorf("SHA1 T=%d: 6-digit ValidateCustom(%q) = %v, %v; want true", v.unix, want[2:], ok, err)
				}
			}
		}
	}
}

func newMFAFixture(tb testing.TB, edit func(o *users.Options)) *Fixture {
	return newFixture(tb, func(o *users.Options) {
		storetest.WithMFAKey(o)
		if edit != nil {
			edit(o)
		}
	})
}

func TestManager_BeginTOTP(t *testing.T) {
	t.Run("ErrMFANotConfigured", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		if _, err := f.M.BeginTOTP(t.Context(), u.ID); !errors.Is(err, users.ErrMFANotConfigured) {
			t.Errorf("BeginTOTP without Options.MFAKeys = %v, want ErrMFANotConfigured", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		f := newMFAFixture(t, func(o *users.Options) { o.MFAIssuer = "Acme" })
		ctx := t.Context()
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		e, err := f.M.BeginTOTP(ctx, u.ID)
		if err != nil {
			t.Fatalf("BeginTOTP: %v", err)
		}
		key, err := otp.NewKeyFromURL(e.URI)
		if err != nil {
			t.Fatalf("parsing the URI %q: %v", e.URI, err)
		}
		if key.Type() != "totp" || key.Issuer() != "Acme" || key.AccountName() != u.Email || key.Secret() != e.Secret ||
			key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
			t.Errorf("URI %q: want totp, issuer Acme, account %s, the secret, 30 s, 6 digits, SHA1", e.URI, u.Email)
		}
		if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret); err != nil || len(raw) < 20 {
			t.Errorf("secret %q: %d bytes, %v; want at least 160 bits", e.Secret, len(raw), err)
		}
		img, err := png.Decode(bytes.NewReader(e.QRCode))
		if err != nil {
			t.Fatalf("QRCode is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
			t.Errorf("QR code is %v, want 256×256", b)
		}

		// Not active until confirmed: Login still gives a session.
		f.MustLogin(t, u.Email, storetest.Password)
		st, err := f.M.MFAStatus(ctx, u.ID)
		if err != nil || st.Enabled || !st.TOTPPending {
			t.Errorf("MFAStatus before confirming = %+v, %v; want pending, not enabled", st, err)
		}
		if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.WrongTOTPCode(t, e.Secret, f.Clock.Now(), 0)); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("ConfirmTOTP(wrong code) = %v, want ErrInvalidCode", err)
		}
		codes, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.TOTPCode(t, e.Secret, f.Clock.Now()))
		if err != nil {
			t.Fatalf("ConfirmTOTP: %v", err)
		}
		if len(codes) != users.RecoveryCodeCount {
			t.Errorf("ConfirmTOTP gave %d recovery codes, want %d", len(codes), users.RecoveryCodeCount)
		}
		st, err = f.M.MFAStatus(ctx, u.ID)
		if err != nil || !st.Enabled || st.TOTPPending || st.RecoveryCodesLeft != users.RecoveryCodeCount || !st.EnabledAt.Equal(f.Clock.Now()) {
			t.Errorf("MFAStatus after confirming = %+v, %v", st, err)
		}
		if _, err := f.M.BeginTOTP(ctx, u.ID); !errors.Is(err, users.ErrMFAEnabled) {
			t.Errorf("BeginTOTP with TOTP enabled = %v, want ErrMFAEnabled", err)
		}
		if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.TOTPCode(t, e.Secret, f.Clock.Now())); !errors.Is(err, users.ErrMFAEnabled) {
			t.Errorf("ConfirmTOTP again = %v, want ErrMFAEnabled", err)
		}
	})
	t.Run("ErrMFANotEnabled", func(t *testing.T) {
		f := newMFAFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		if _, err := f.M.ConfirmTOTP(t.Context(), u.ID, "123456"); !errors.Is(err, users.ErrMFANotEnabled) {
			t.Errorf("ConfirmTOTP without BeginTOTP = %v, want ErrMFANotEnabled", err)
		}
		if _, err := f.M.RegenerateRecoveryCodes(t.Context(), u.ID); !errors.Is(err, users.ErrMFANotEnabled) {
			t.Errorf("RegenerateRecoveryCodes without a factor = %v, want ErrMFANotEnabled", err)
		}
	})
}

func TestNew_MFAKeys(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for name, keys := range map[string][]users.MFAKey{
		"Short":     {{ID: "a", Key: key[:16]}},
		"NoID":      {{Key: key}},
		"LongID":    {{ID: strings.Repeat("k", 65), Key: key}},
		"Duplicate": {{ID: "a", Key: key}, {ID: "a", Key: bytes.Repeat([]byte{8}, 32)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MFAKeys: keys})
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != "options.MFAKeys" {
				t.Errorf("New = %v, want a *ValidationError on options.MFAKeys", err)
			}
		})
	}
}

// TestManager_MFAKeyRotation checks rotation: a secret sealed under a key that
// is no longer first still works, and is sealed again under the current key
// when next used; without its key TOTP fails but recovery codes still work.
func TestManager_MFAKeyRotation(t *testing.T) {
	store := users.NewMemoryStore()
	clock := storetest.NewClock()
	oldKey := storetest.MFAKey
	newKey := users.MFAKey{ID: "2027", Key: bytes.Repeat([]byte{9}, 32)}
	ctx := t.Context()

	a := storetest.NewFixture(t, store, func(o *users.Options) { o.MFAKeys = []users.MFAKey{oldKey}; o.Now = clock.Now })
	a.Clock = clock
	u := a.MustCreate(t, users.NewUser{Email: "rotate@example.com"})
	secret, codes := a.MustEnrolTOTP(t, u.ID)

	b := storetest.NewFixture(t, store, func(o *users.Options) { o.MFAKeys = []users.MFAKey{newKey, oldKey}; o.Now = clock.Now })
	if _, err := b.M.CompleteLogin(ctx, b.MustChallenge(t, u.Email).Token, storetest.TOTPCode(t, secret, clock.Now())); err != nil {
		t.Fatalf("CompleteLogin after rotation: %v", err)
	}
	rec, err := store.GetMFA(ctx, u.ID)
	if err != nil || rec.TOTP.KeyID != newKey.ID {
		t.Fatalf("after use the secret is sealed under %q (%v), want %q", rec.TOTP.KeyID, err, newKey.ID)
	}
	clock.Advance(30 * time.Second)
	c := storetest.NewFixture(t, store, func(o *users.Options) { o.MFAKeys = []users.MFAKey{newKey}; o.Now = clock.Now })
	if _, err := c.M.CompleteLogin(ctx, c.MustChallenge(t, u.Email).Token, storetest.TOTPCode(t, secret, clock.Now())); err != nil {
		t.Errorf("CompleteLogin with the old key gone: %v", err)
	}
	clock.Advance(30 * time.Second)
	d := storetest.NewFixture(t, store, func(o *users.Options) { o.Now = clock.Now })
	ch := d.MustChallenge(t, u.Email)
	if _, err := d.M.CompleteLogin(ctx, ch.Token, storetest.TOTPCode(t, secret, clock.Now())); !errors.Is(err, users.ErrMFANotConfigured) {
		t.Errorf("CompleteLogin(TOTP) without keys = %v, want ErrMFANotConfigured", err)
	}
	if _, err := d.M.CompleteLogin(ctx, ch.Token, codes[0]); err != nil {
		t.Errorf("CompleteLogin(recovery code) without keys: %v", err)
	}
}

func TestManager_RecoveryCodes(t *testing.T) {
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	_, codes := f.MustEnrolTOTP(t, u.ID)
	form := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`) // 16 Crockford characters: 80 bits
	seen := map[string]bool{}
	for _, c := range codes {
		if !form.MatchString(c) || seen[c] {
			t.Errorf("recovery code %q: want a new code of four groups of four Crockford base32 characters", c)
		}
		seen[c] = true
	}
	// Typed loosely: upper case, without hyphens, with spaces, O for 0 and I for 1.
	loose := strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))
	loose = strings.NewReplacer("0", "O", "1", "I").Replace(loose)
	if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, loose); err != nil {
		t.Errorf("CompleteLogin(%q for %q): %v", loose, codes[0], err)
	}
	fresh, err := f.M.RegenerateRecoveryCodes(ctx, u.ID)
	if err != nil {
		t.Fatalf("RegenerateRecoveryCodes: %v", err)
	}
	if st, _ := f.M.MFAStatus(ctx, u.ID); st.RecoveryCodesLeft != users.RecoveryCodeCount {
		t.Errorf("RecoveryCodesLeft after regenerating = %d, want %d", st.RecoveryCodesLeft, users.RecoveryCodeCount)
	}
	if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, codes[1]); !errors.Is(err, users.ErrInvalidCode) {
		t.Errorf("an old unused code after regenerating = %v, want ErrInvalidCode", err)
	}
	if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, fresh[0]); err != nil {
		t.Errorf("a new code: %v", err)
	}
	if st, _ := f.M.MFAStatus(ctx, u.ID); st.RecoveryCodesLeft != users.RecoveryCodeCount-1 {
		t.Errorf("RecoveryCodesLeft = %d, want %d", st.RecoveryCodesLeft, users.RecoveryCodeCount-1)
	}
}

// TestMFA_AttackerWithPasswordCannotWalkCodes plays an attacker who knows the
// password and guesses codes for as long as the Manager lets them, waiting out
// every lock: logging in again does not reset the count, so the account ends
// locked for good (MaxConsecutiveFailures) after fewer than 100 guesses, a
// chance of about 3 in 10,000 to hit one of the three codes a step of skew
// accepts, not 10^6 tries.
func TestMFA_AttackerWithPasswordCannotWalkCodes(t *testing.T) {
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	guesses, logins := 0, 0
	for round := 0; round < 1000; round++ {
		_, err := f.M.Login(ctx, u.Email, storetest.Password)
		var c *users.Challenge
		switch {
		case errors.As(err, &c):
			logins++
		case errors.Is(err, users.ErrAccountLocked):
			ls, lerr := f.M.LockState(ctx, u.ID)
			if lerr != nil {
				t.Fatalf("LockState: %v", lerr)
			}
			if ls.Permanent {
				goto locked // locked until a reset or Unlock
			}
			f.Clock.Advance(ls.LockedUntil.Sub(f.Clock.Now()) + time.Second)
			continue
		default:
			t.Fatalf("Login: %v", err)
		}
		for i := 0; ; i++ {
			_, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i%10))
			if !errors.Is(err, users.ErrInvalidCode) {
				break // the challenge died or the account locked
			}
			guesses++
		}
	}
	t.Fatalf("the attacker was never locked out for good (%d guesses)", guesses)
locked:
	t.Logf("%d codes checked over %d logins before the account locked for good", guesses, logins)
	if guesses+logins > users.MaxConsecutiveFailures {
		t.Errorf("%d codes and %d logins counted, want at most %d together", guesses, logins, users.MaxConsecutiveFailures)
	}
	if _, err := f.M.Login(ctx, u.Email, storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Errorf("Login after the lock = %v, want ErrAccountLocked", err)
	}
}

// TestMFA_ConcurrentCodesBounded sends many codes at once against several
// challenges: at most MaxFailedLogins attempts (logins included) are counted
// and checked before the account locks.
func TestMFA_ConcurrentCodesBounded(t *testing.T) {
	const max = 10
	f := newMFAFixture(t, func(o *users.Options) { o.MaxFailedLogins = max })
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	var tokens []string
	for range 4 {
		tokens = append(tokens, f.MustChallenge(t, u.Email).Token)
	}
	var checked, locked atomic.Int32
	done := make(chan struct{})
	n := len(tokens) * users.MaxChallengeAttempts
	gate := make(chan struct{})
	for i := range n {
		go func() {
			<-gate
			_, err := f.M.CompleteLogin(ctx, tokens[i%len(tokens)], storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i%10))
			switch {
			case errors.Is(err, users.ErrInvalidCode):
				checked.Add(1)
			case errors.Is(err, users.ErrAccountLocked), errors.Is(err, users.ErrInvalidToken):
				locked.Add(1)
			default:
				t.Errorf("CompleteLogin: %v", err)
			}
			done <- struct{}{}
		}()
	}
	close(gate)
	for range n {
		<-done
	}
	if got := int(checked.Load()) + len(tokens); got > max {
		t.Errorf("%d codes checked after %d logins, want at most %d together", checked.Load(), len(tokens), max)
	}
	if _, err := f.M.Login(ctx, u.Email, storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Errorf("Login with the right password after the codes = %v, want ErrAccountLocked", err)
	}
}

// TestMFA_PasswordDoesNotForgetCodeFailures: for a user with a second factor,
// a right password leaves earlier failures counted; a right code forgets them.
func TestMFA_PasswordDoesNotForgetCodeFailures(t *testing.T) {
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	c := f.MustChallenge(t, u.Email)
	for i := range 3 {
		if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
			t.Fatalf("wrong code: %v", err)
		}
	}
	c = f.MustChallenge(t, u.Email)
	ls, err := f.M.LockState(ctx, u.ID)
	if err != nil || ls.ConsecutiveFailures != 5 {
		t.Errorf("after a login, 3 wrong codes and a login: ConsecutiveFailures = %d (%v), want 5", ls.ConsecutiveFailures, err)
	}
	if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.TOTPCode(t, secret, f.Clock.Now())); err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	if ls, _ := f.M.LockState(ctx, u.ID); ls.ConsecutiveFailures != 0 {
		t.Errorf("after a right code: ConsecutiveFailures = %d, want 0", ls.ConsecutiveFailures)
	}
}

func TestManager_RequireSecondFactor(t *testing.T) {
	f := newMFAFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	sess := f.MustLogin(t, u.Email, storetest.Password)
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	h := f.M.Middleware("", f.M.RequireSecondFactor(10*time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	do := func(token string) (int, string) {
		req := httptest.NewRequest("GET", "/admin", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := do(sess.Token); code != http.StatusForbidden || !strings.Contains(body, users.CodeSecondFactorRequired) {
		t.Errorf("one-factor session: %d %s, want 403 %s", code, body, users.CodeSecondFactorRequired)
	}
	if _, err := f.M.StepUp(t.Context(), sess.Token, storetest.TOTPCode(t, secret, f.Clock.Now())); err != nil {
		t.Fatalf("StepUp: %v", err)
	}
	if code, body := do(sess.Token); code != http.StatusNoContent {
		t.Errorf("after StepUp: %d %s, want 204", code, body)
	}
	f.Clock.Advance(10*time.Minute + time.Second)
	if code, _ := do(sess.Token); code != http.StatusForbidden {
		t.Errorf("after maxAge: %d, want 403", code)
	}
	if code, _ := do(""); code != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", code)
	}
}

func TestManager_DisableMFA(t *testing.T) {
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	if err := f.M.DisableMFA(ctx, u.ID, storetest.Password, ""); !errors.Is(err, users.ErrMFANotEnabled) {
		t.Errorf("DisableMFA without a factor = %v, want ErrMFANotEnabled", err)
	}
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	var ve *users.ValidationError
	if err := f.M.DisableMFA(ctx, u.ID, "", ""); !errors.As(err, &ve) {
		t.Errorf("DisableMFA without proof = %v, want a *ValidationError", err)
	}
	if err := f.M.DisableMFA(ctx, u.ID, storetest.Password, "123456"); !errors.As(err, &ve) {
		t.Errorf("DisableMFA with both = %v, want a *ValidationError", err)
	}
	if err := f.M.DisableMFA(ctx, u.ID, "wrong password!", ""); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("DisableMFA(wrong password) = %v, want ErrInvalidCredentials", err)
	}
	if err := f.M.DisableMFA(ctx, u.ID, "", storetest.WrongTOTPCode(t, secret, f.Clock.Now(), 0)); !errors.Is(err, users.ErrInvalidCode) {
		t.Errorf("DisableMFA(wrong code) = %v, want ErrInvalidCode", err)
	}
	if st, _ := f.M.MFAStatus(ctx, u.ID); !st.Enabled {
		t.Fatal("a refused DisableMFA removed the factor")
	}
	if err := f.M.DisableMFA(ctx, u.ID, "", storetest.TOTPCode(t, secret, f.Clock.Now())); err != nil {
		t.Fatalf("DisableMFA(code): %v", err)
	}
	if st, _ := f.M.MFAStatus(ctx, u.ID); st.Enabled || st.RecoveryCodesLeft != 0 {
		t.Errorf("MFAStatus after DisableMFA = %+v, want nothing", st)
	}
	f.MustLogin(t, u.Email, storetest.Password) // one factor again

	f.MustEnrolTOTP(t, u.ID)
	if err := f.M.DisableMFA(ctx, u.ID, storetest.Password, ""); err != nil {
		t.Fatalf("DisableMFA(password): %v", err)
	}
	f.MustLogin(t, u.Email, storetest.Password)
}

func TestHTTPError_MFA(t *testing.T) {
	f := newMFAFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	f.MustEnrolTOTP(t, u.ID)
	_, challenge := f.M.Login(t.Context(), u.Email, storetest.Password)
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{challenge, 401, users.CodeMFARequired},
		{users.ErrInvalidCode, 401, users.CodeInvalidCode},
		{users.ErrMFAEnabled, 409, users.CodeMFAEnabled},
		{users.ErrMFANotEnabled, 409, users.CodeMFANotEnabled},
	} {
		if status, code, _ := users.HTTPError(tc.err); status != tc.status || code != tc.code {
			t.Errorf("HTTPError(%v) = %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
	if strings.Contains(challenge.Error(), challenge.(*users.Challenge).Token) {
		t.Error("the challenge's Error() contains its token")
	}
}

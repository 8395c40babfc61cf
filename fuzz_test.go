package users_test

// Fuzz targets for the inputs an attacker controls: identifiers, passwords,
// bearer tokens and page cursors. Seed corpora live in testdata/fuzz/<Target>;
// run one target with, for example,
//
//	go test -run '^$' -fuzz '^FuzzNormalizeEmail$' -fuzztime 10s .

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"golang.org/x/text/unicode/norm"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// fuzzWantInvalid fails unless err is a *ValidationError on field with a
// Reason and one of the package's ValidationCodes.
func fuzzWantInvalid(t *testing.T, err error, field, input string) {
	t.Helper()
	var ve *users.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, users.ErrInvalidInput) || ve.Field != field || ve.Reason == "" {
		t.Fatalf("input %q: got %v, want a *ValidationError on %q", input, err, field)
	}
	if !slices.Contains(users.ValidationCodes(), ve.Code) {
		t.Fatalf("input %q: %v has the code %q, want one of users.ValidationCodes()", input, err, ve.Code)
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", " Alice@Example.COM\t", "user+tag@sub.example.co.uk", "a@b@c.com",
		"\u212a@example.com", "a\x00@example.com", `"quoted"@example.com`, "a..b@example.com",
		".a@example.com", "a@-example.com", "a@example..com", "a@", "@example.com", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := users.NormalizeEmail(s)
		if err != nil {
			fuzzWantInvalid(t, err, "email", s)
			if e != "" {
				t.Fatalf("NormalizeEmail(%q) returned %q with an error", s, e)
			}
			return
		}
		switch {
		case strings.Count(e, "@") != 1:
			t.Fatalf("NormalizeEmail(%q) = %q: not exactly one @", s, e)
		case strings.IndexFunc(e, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
			t.Fatalf("NormalizeEmail(%q) = %q: contains a control or space character", s, e)
		case !utf8.ValidString(e) || e != strings.ToLower(e):
			t.Fatalf("NormalizeEmail(%q) = %q: not lower-case valid UTF-8", s, e)
		case len(e) > 254:
			t.Fatalf("NormalizeEmail(%q) = %q: %d bytes, over 254", s, e, len(e))
		}
		local, domain, _ := strings.Cut(e, "@")
		if local == "" || domain == "" {
			t.Fatalf("NormalizeEmail(%q) = %q: empty local part or domain", s, e)
		}
		again, err := users.NormalizeEmail(e)
		if err != nil || again != e {
			t.Fatalf("not idempotent: NormalizeEmail(%q) = %q, NormalizeEmail(%q) = %q, %v", s, e, e, again, err)
		}
		if up, err := users.NormalizeEmail(" " + strings.ToUpper(e) + "\n"); err != nil || up != e {
			t.Fatalf("NormalizeEmail of the padded upper-case form of %q = %q, %v", e, up, err)
		}
	})
}

func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{
		"alice", " Alice_99 ", "ab", strings.Repeat("a", 33), "a@b.c", "\u212aelvin", "user\x00name",
		"\u00e4_user", "a b c", "---", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := users.NormalizeUsername(s)
		if err != nil {
			fuzzWantInvalid(t, err, "username", s)
			if u != "" {
				t.Fatalf("NormalizeUsername(%q) returned %q with an error", s, u)
			}
			return
		}
		if u == "" {
			if strings.TrimSpace(s) != "" {
				t.Fatalf("NormalizeUsername(%q) = \"\" for a non-blank input", s)
			}
			return
		}
		if len(u) < 3 || len(u) > 32 {
			t.Fatalf("NormalizeUsername(%q) = %q: %d bytes, want 3-32", s, u, len(u))
		}
		for _, r := range u {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
				t.Fatalf("NormalizeUsername(%q) = %q: contains %q", s, u, r)
			}
		}
		again, err := users.NormalizeUsername(u)
		if err != nil || again != u {
			t.Fatalf("not idempotent: NormalizeUsername(%q) = %q, NormalizeUsername(%q) = %q, %v", s, u, u, again, err)
		}
	})
}

func FuzzPassword(f *testing.F) {
	for _, s := range []string{
		"caf\u00e9 au lait", "cafe\u0301 au lait", hangul64(), norm.NFD.String(hangul64()),
		strings.Repeat("a", 72) + "X", "ab\x00ab", "zxvbnmqp\x00", "\ufb03\ufb03\ufb03", strings.Repeat("\ufdfa", 8),
		"\xff\xfe passwords", "\u0085 passwords", "Password", strings.Repeat("\U0001F600", 128), "",
	} {
		f.Add(s)
	}
	const min = users.MinPasswordLength
	f.Fuzz(func(t *testing.T, pw string) {
		n, err := users.NormalizePassword(pw, min)
		nfkc := ""
		if utf8.ValidString(pw) {
			nfkc = norm.NFKC.String(pw)
		}
		chars := utf8.RuneCountInString(nfkc)
		// Exactly the passwords the character rules allow are accepted: valid
		// UTF-8, no control characters, 8 to 128 characters after NFKC.
		ok := utf8.ValidString(pw) && strings.IndexFunc(nfkc, unicode.IsControl) < 0 && chars >= min && chars <= users.MaxPasswordLength
		if err != nil {
			fuzzWantInvalid(t, err, "password", pw)
			if ok {
				t.Fatalf("refused %q (%d characters after NFKC, no control characters): %v", pw, chars, err)
			}
			return
		}
		if !ok {
			t.Fatalf("accepted %q: %d characters after NFKC, valid UTF-8 %v", pw, chars, utf8.ValidString(pw))
		}
		if n != nfkc {
			t.Fatalf("NormalizePassword(%q) = %q, want its NFKC form %q", pw, n, nfkc)
		}
		if strings.IndexByte(pw, 0) >= 0 || strings.IndexFunc(pw, unicode.IsControl) >= 0 {
			t.Fatalf("accepted %q, which has a control character", pw)
		}
		// Idempotent, and every canonically equivalent spelling is the same password.
		for _, form := range []string{n, norm.NFC.String(pw), norm.NFD.String(pw), norm.NFKD.String(pw)} {
			if got, err := users.NormalizePassword(form, min); err != nil || got != n {
				t.Fatalf("NormalizePassword(%q) = %q, %v; want %q as for %q", form, got, err, n, pw)
			}
		}
		// Nothing is cut: one more character is another password, or too long.
		longer, err := users.NormalizePassword(pw+"x", min)
		switch {
		case chars < users.MaxPasswordLength && (err != nil || longer != n+"x"):
			t.Fatalf("NormalizePassword(%q + \"x\") = %q, %v; want %q", pw, longer, err, n+"x")
		case chars == users.MaxPasswordLength && err == nil:
			t.Fatalf("accepted %q + \"x\": 129 characters", pw)
		}
	})
}

func FuzzValidateToken(f *testing.F) {
	fx := newFixture(f, nil)
	fx.mustCreate(f, users.NewUser{Email: "alice@example.com"})
	s := fx.MustLogin(f, "alice@example.com", storetest.Password)
	bg := f.Context()
	for _, seed := range []string{
		"", strings.Repeat("A", 43), strings.Repeat("A", 42) + "B", strings.Repeat("A", 43) + "=",
		strings.Repeat("+/", 21) + "A", strings.Repeat("A", 44), strings.Repeat("\x00", 43),
		s.Token[:42], s.Token + "A", strings.ToUpper(s.Token), " " + s.Token,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == s.Token {
			t.Skip("the live token")
		}
		got, err := fx.M.ValidateToken(bg, tok)
		if err != users.ErrInvalidToken || got != nil {
			t.Fatalf("ValidateToken(%q) = %v, %v; want nil, ErrInvalidToken", tok, got, err)
		}
		if err := fx.M.Logout(bg, tok); err != users.ErrInvalidToken {
			t.Fatalf("Logout(%q) = %v, want ErrInvalidToken", tok, err)
		}
		if _, err := fx.M.VerifyEmail(bg, tok); err != users.ErrInvalidToken {
			t.Fatalf("VerifyEmail(%q) = %v, want ErrInvalidToken", tok, err)
		}
		if _, err := fx.M.LoginWithMagicLink(bg, tok); err != users.ErrInvalidToken {
			t.Fatalf("LoginWithMagicLink(%q) = %v, want ErrInvalidToken", tok, err)
		}
		if _, err := fx.M.ValidateToken(bg, s.Token); err != nil {
			t.Fatalf("after trying %q, the live session no longer validates: %v", tok, err)
		}
	})
}

func FuzzFindCursor(f *testing.F) {
	fx := newFixture(f, nil)
	bg := f.Context()
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		fx.mustCreate(f, users.NewUser{Email: e})
	}
	page, err := fx.M.Find(bg, users.Filter{Limit: 1})
	if err != nil || page.Next == "" {
		f.Fatalf("Find: %v, %+v", err, page)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, seed := range []string{
		page.Next, enc([]byte("c1.01ARZ3NDEKTSV4RRFFQ69G5FAV")), enc([]byte("c1.01arz3ndektsv4rrffq69g5fav")),
		enc([]byte("c1.8ZZZZZZZZZZZZZZZZZZZZZZZZZ")), enc([]byte("c2.01ARZ3NDEKTSV4RRFFQ69G5FAV")),
		enc([]byte("c1.")), base64.StdEncoding.EncodeToString([]byte("c1.01ARZ3NDEKTSV4RRFFQ69G5FAV")),
		page.Next + "A", page.Next[1:], "not a cursor", "\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		if c == "" {
			t.Skip("no cursor")
		}
		for _, field := range []string{"after", "before"} {
			flt := users.Filter{After: c}
			if field == "before" {
				flt = users.Filter{Before: c}
			}
			p, err := fx.M.Find(bg, flt)
			if err != nil {
				fuzzWantInvalid(t, err, field, c)
				continue
			}
			// Accepted: it must be one of ours, naming a canonical ULID.
			b, derr := base64.RawURLEncoding.DecodeString(c)
			id, found := strings.CutPrefix(string(b), "c1.")
			u, perr := ulid.ParseStrict(id)
			if derr != nil || !found || perr != nil || u.String() != id {
				t.Fatalf("Find accepted the %s cursor %q, which names no ULID of ours (%q)", field, c, b)
			}
			for _, usr := range p.Users {
				if field == "after" && usr.ID <= id || field == "before" && usr.ID >= id {
					t.Fatalf("%s cursor %s: page holds %s", field, id, usr.ID)
				}
			}
		}
	})
}

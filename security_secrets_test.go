package users_test

// Secrets at rest: no password or token in the store's bytes or in an error string.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

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
func secFlows(t *testing.T, m *users.Manager, clock *storetest.Clock) (*secSecrets, []error, []byte) {
	t.Helper()
	bg := t.Context()
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
		store, clock := users.NewMemoryStore(), storetest.NewClock()
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
		clock := storetest.NewClock()
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

package users_test

// Imported password hashes: bounded costs (SECURITY.md, "Imported hashes").

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

// withCost returns the bcrypt hash h with its cost field replaced: a hash no
// one can check quickly, made without computing it.
func withCost(tb testing.TB, h, cost string) string {
	tb.Helper()
	i := strings.Index(h, "$2a$")
	if i < 0 || len(cost) != 2 {
		tb.Fatalf("withCost(%.20q, %q)", h, cost)
	}
	return h[:i+4] + cost + h[i+6:]
}

// wantFieldRefused fails unless err is a *ValidationError on field.
func wantFieldRefused(tb testing.TB, err error, field, what string) {
	tb.Helper()
	var ve *users.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, users.ErrInvalidInput) || ve.Field != field || ve.Reason == "" {
		tb.Fatalf("%s: got %v, want a *ValidationError on %q", what, err, field)
	}
}

// Imported hashes can carry any bcrypt cost: one check of cost 31 takes about
// a day. Create and Import refuse costs above Options.MaxBcryptCost (default
// 14) in imported bcrypt hashes and in this package's own format, and a stored
// hash above it is never computed at a login.
func TestSecurity_BcryptCostBound(t *testing.T) {
	bg := t.Context()
	h4, err := bcrypt.GenerateFromPassword([]byte("old system p4ss"), 4)
	if err != nil {
		t.Fatal(err)
	}
	imported := string(h4)
	f := newFixture(t, nil)
	ours := secStoredHash(t, f.Store, f.mustCreate(t, users.NewUser{Email: "ours@example.com"}).Email)

	t.Run("Refused", func(t *testing.T) {
		for _, h := range []string{
			withCost(t, imported, "31"),
			withCost(t, imported, "15"),
			withCost(t, ours, "31"),
			withCost(t, ours, "15"),
			"$2y$" + withCost(t, imported, "31")[4:],
		} {
			before := f.Compares.Load()
			_, err := f.M.Create(bg, users.NewUser{Email: "big@example.com", PasswordHash: h})
			wantFieldRefused(t, err, "password_hash.cost", "Create with "+h[:min(len(h), 26)])
			res, err := f.M.Import(bg, []users.NewUser{{Email: "big@example.com", PasswordHash: h}})
			if err != nil || len(res) != 1 || res[0].User != nil {
				t.Fatalf("Import: %+v, %v", res, err)
			}
			wantFieldRefused(t, res[0].Err, "password_hash.cost", "Import with "+h[:min(len(h), 26)])
			if _, err := f.M.GetByEmail(bg, "big@example.com"); !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("a refused row was stored: %v", err)
			}
			if n := f.Compares.Load() - before; n != 0 {
				t.Fatalf("refusing the hash ran %d comparisons", n)
			}
		}
	})
	t.Run("AcceptedUpToTheBound", func(t *testing.T) {
		// Migrations from systems that used 12 or 13 keep working.
		for i, cost := range []string{"10", "12", "13", "14"} {
			for j, h := range []string{withCost(t, imported, cost), withCost(t, ours, cost)} {
				email := "ok" + cost + string(rune('a'+i+j*4)) + "@example.com"
				if _, err := f.M.Create(bg, users.NewUser{Email: email, PasswordHash: h}); err != nil {
					t.Errorf("Create with cost %s: %v", cost, err)
				}
			}
		}
	})
	t.Run("Configurable", func(t *testing.T) {
		g := newFixture(t, func(o *users.Options) { o.MaxBcryptCost = 10 })
		_, err := g.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: withCost(t, imported, "11")})
		wantFieldRefused(t, err, "password_hash.cost", "Create with cost 11 over MaxBcryptCost 10")
		if _, err := g.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: withCost(t, imported, "10")}); err != nil {
			t.Errorf("Create with cost 10 under MaxBcryptCost 10: %v", err)
		}
		for _, o := range []users.Options{
			{BcryptCost: 12, MaxBcryptCost: 11},
			{BcryptCost: 12, MaxBcryptCost: 32},
		} {
			_, err := users.New(users.NewMemoryStore(), &o)
			wantFieldRefused(t, err, "options.MaxBcryptCost", "New with BcryptCost 12, MaxBcryptCost "+string(rune('0'+o.MaxBcryptCost/10))+string(rune('0'+o.MaxBcryptCost%10)))
		}
	})
	t.Run("StoredBeforeTheBound", func(t *testing.T) {
		// A hash over the bound that reached the store some other way (before
		// the bound existed) is never computed: the decoy is compared instead.
		g := newFixture(t, func(o *users.Options) { o.MaxBcryptCost = 5 })
		h6, err := bcrypt.GenerateFromPassword([]byte("old system p4ss"), 6)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		r := &users.UserRecord{User: users.User{ID: "01JB0000000000000000000000", Email: "old@example.com", Role: users.RoleUser, Status: users.StatusActive, CreatedAt: now, UpdatedAt: now}, PasswordHash: string(h6)}
		if err := g.Store.CreateUser(bg, r); err != nil {
			t.Fatal(err)
		}
		if n, err := g.secLogin("old@example.com", "old system p4ss"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
			t.Fatalf("Login against a stored cost-6 hash over MaxBcryptCost 5: %v after %d comparisons, want ErrInvalidCredentials after 1", err, n)
		}
		// The same for another format, whose bounds are checked again at each
		// login: Django's bcrypt_sha256 at cost 6.
		sum := sha256.Sum256([]byte("old system p4ss"))
		d6, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(sum[:])), 6)
		if err != nil {
			t.Fatal(err)
		}
		r.ID, r.Email, r.PasswordHash = "01JB0000000000000000000001", "django@example.com", "bcrypt_sha256$"+string(d6)
		if err := g.Store.CreateUser(bg, r); err != nil {
			t.Fatal(err)
		}
		if n, err := g.secLogin("django@example.com", "old system p4ss"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
			t.Fatalf("Login against a stored Django hash over MaxBcryptCost 5: %v after %d checks, want ErrInvalidCredentials after 1", err, n)
		}
	})
}

// hashVector is one line of testdata/imported-hashes/vectors.jsonl (make.py
// there says how each was made: Python's hashlib and crypt, Debian's argon2,
// published ASP.NET Core and Firebase vectors).
type hashVector struct {
	Format        string `json:"format"`
	Password      string `json:"password"`
	Hash          string `json:"hash"`
	SignerKey     string `json:"signer_key"`
	SaltSeparator string `json:"salt_separator"`
	Rounds        int    `json:"rounds"`
	MemCost       int    `json:"mem_cost"`
	Slow          bool   `json:"slow"`
}

// cheapestVectors returns, for each format, the vector whose hash is the
// shortest to check among those of the file (the first of equals).
func cheapestVectors(tb testing.TB) (vs []hashVector, firebase *users.FirebaseScrypt) {
	tb.Helper()
	b, err := os.ReadFile("testdata/imported-hashes/vectors.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		var v hashVector
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			tb.Fatal(err)
		}
		if v.SignerKey != "" {
			k, err1 := base64.StdEncoding.DecodeString(v.SignerKey)
			s, err2 := base64.StdEncoding.DecodeString(v.SaltSeparator)
			if err := errors.Join(err1, err2); err != nil {
				tb.Fatal(err)
			}
			firebase = &users.FirebaseScrypt{SignerKey: k, SaltSeparator: s, Rounds: v.Rounds, MemCost: v.MemCost}
		}
		if !seen[v.Format] && !v.Slow {
			seen[v.Format] = true
			vs = append(vs, v)
		}
	}
	return vs, firebase
}

// Imported hashes of other systems (issue 25): each format logs in with the
// right password after exactly one check, refuses a wrong one after exactly
// one, and is replaced by this package's format on the first successful
// login; Import takes them as Create does.
func TestSecurity_ImportedFormats(t *testing.T) {
	t.Parallel()
	bg := t.Context()
	vs, fb := cheapestVectors(t)
	if len(vs) < 14 {
		t.Fatalf("%d formats with a cheap vector, want 14", len(vs))
	}
	f := newFixture(t, func(o *users.Options) { o.FirebaseScrypt = fb })
	for i, v := range vs {
		t.Run(v.Format, func(t *testing.T) {
			email := "u" + strconv.Itoa(i) + "@example.com"
			u := f.mustCreate(t, users.NewUser{Email: email, PasswordHash: v.Hash})
			if got := secStoredHash(t, f.Store, email); got != v.Hash {
				t.Fatalf("stored %.40q, want the imported hash unchanged", got)
			}
			if st, err := f.M.LockState(bg, u.ID); err != nil || !st.ImportedHash {
				t.Errorf("LockState before the first login: %+v, %v; want ImportedHash", st, err)
			}
			if n, err := f.secLogin(email, v.Password+"!"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Fatalf("wrong password: %v after %d checks, want ErrInvalidCredentials after 1", err, n)
			}
			if got := secStoredHash(t, f.Store, email); got != v.Hash {
				t.Fatal("a failed login changed the imported hash")
			}
			if n, err := f.secLogin(email, v.Password); err != nil || n != 1 {
				t.Fatalf("the old password %q: %v after %d checks, want success after 1", v.Password, err, n)
			}
			if got := secOurCost(t, secStoredHash(t, f.Store, email)); got != 4 {
				t.Fatalf("the upgraded hash has cost %d, want the Manager's 4", got)
			}
			if st, err := f.M.LockState(bg, u.ID); err != nil || st.ImportedHash {
				t.Errorf("LockState after the upgrade: %+v, %v; want no ImportedHash", st, err)
			}
			f.MustLogin(t, email, v.Password)
			if _, err := f.M.Login(bg, email, v.Password+"!"); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("wrong password after the upgrade: %v", err)
			}
		})
	}
	t.Run("Import", func(t *testing.T) {
		rows := make([]users.NewUser, len(vs))
		for i, v := range vs {
			rows[i] = users.NewUser{Email: "imp" + strconv.Itoa(i) + "@example.com", PasswordHash: v.Hash}
		}
		before := f.Compares.Load()
		res, err := f.M.Import(bg, rows)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.User == nil {
				t.Errorf("Import of %s: %v", vs[i].Format, r.Err)
			}
		}
		if n := f.Compares.Load() - before; n != 0 {
			t.Errorf("Import ran %d checks; imported hashes cost none", n)
		}
		if n, err := f.secLogin("imp0@example.com", vs[0].Password); err != nil || n != 1 {
			t.Errorf("login of an imported row: %v after %d checks", err, n)
		}
	})
	t.Run("UnknownUserConstantWork", func(t *testing.T) {
		// An unknown identifier still costs exactly one check: the decoy bcrypt.
		for _, id := range []string{"nobody@example.com", "nobody"} {
			if n, err := f.secLogin(id, vs[0].Password); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Errorf("unknown %q: %v after %d checks, want ErrInvalidCredentials after 1", id, err, n)
			}
		}
	})
	t.Run("FirebaseNeedsItsParameters", func(t *testing.T) {
		g := newFixture(t, nil)
		for _, v := range vs {
			if v.Format == "firebase-scrypt" {
				_, err := g.M.Create(bg, users.NewUser{Email: "fb@example.com", PasswordHash: v.Hash})
				wantFieldRefused(t, err, "password_hash", "Create of a Firebase hash without Options.FirebaseScrypt")
			}
		}
		for _, c := range []struct {
			fb    users.FirebaseScrypt
			field string
		}{
			{users.FirebaseScrypt{SignerKey: fb.SignerKey, Rounds: 9, MemCost: 14}, "options.FirebaseScrypt.Rounds"},
			{users.FirebaseScrypt{SignerKey: fb.SignerKey, Rounds: 8, MemCost: 20}, "options.FirebaseScrypt.MemCost"},
			{users.FirebaseScrypt{SignerKey: nil, Rounds: 8, MemCost: 14}, "options.FirebaseScrypt.SignerKey"},
		} {
			_, err := users.New(users.NewMemoryStore(), &users.Options{FirebaseScrypt: &c.fb})
			wantFieldRefused(t, err, c.field, "New with "+c.field+" out of range")
		}
	})
}

// Every cost parameter of an imported hash is bounded at Create and Import,
// with the parameter named, so that no imported hash can make one login cost
// seconds; malformed hashes are refused on "password_hash". Nothing is stored
// and nothing is computed.
func TestSecurity_ImportedHashBounds(t *testing.T) {
	bg := t.Context()
	const salt, key = "AAECAwQFBgcICQoLDA0ODw", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	crypt86 := "ST/mWEmUvGaF8bR7RgZUdh5cwHaiiTTLMzdmz6VYMGgVtDKO8Huz6GcoOtpj0X0zfFtfnn1aYJnZLSFBw4K2p0"
	f := newFixture(t, nil)
	for _, c := range []struct{ hash, field string }{
		{"$argon2id$v=19$m=4194304,t=1,p=4$" + salt + "$" + key, "password_hash.memory"},
		{"$argon2id$v=19$m=65536,t=1000,p=4$" + salt + "$" + key, "password_hash.iterations"},
		{"$argon2i$v=19$m=65536,t=2,p=255$" + salt + "$" + key, "password_hash.parallelism"},
		{"$scrypt$ln=20,r=8,p=1$" + salt + "$" + key, "password_hash.n"},
		{"$scrypt$ln=14,r=255,p=1$" + salt + "$" + key, "password_hash.r"},
		{"$scrypt$ln=14,r=8,p=255$" + salt + "$" + key, "password_hash.p"},
		{"$pbkdf2-sha512$i=100000000$" + salt + "$" + key, "password_hash.iterations"},
		{"pbkdf2_sha256$100000000$salt$" + key + "=", "password_hash.iterations"},
		{"$6$rounds=999999999$saltsaltsalt$" + crypt86, "password_hash.rounds"},
		{"AQAAAAF/////AAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "password_hash.iterations"},
		{"$argon2id$v=19$m=65536,t=2$" + salt + "$" + key, "password_hash"},
		{"$6$saltsaltsalt$tooshort", "password_hash"},
		{"pbkdf2_sha256$1000$salt$not base64!", "password_hash"},
		{"{not json", "password_hash"},
		{"$1$md5$isnotsupported", "password_hash"},
	} {
		before := f.Compares.Load()
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: c.hash})
		wantFieldRefused(t, err, c.field, "Create with "+c.hash[:min(len(c.hash), 40)])
		res, err := f.M.Import(bg, []users.NewUser{{Email: "a@example.com", PasswordHash: c.hash}})
		if err != nil || len(res) != 1 {
			t.Fatalf("Import: %v", err)
		}
		wantFieldRefused(t, res[0].Err, c.field, "Import with "+c.hash[:min(len(c.hash), 40)])
		if _, err := f.M.GetByEmail(bg, "a@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("a refused hash was stored: %v", err)
		}
		if n := f.Compares.Load() - before; n != 0 {
			t.Fatalf("refusing %.30q ran %d checks", c.hash, n)
		}
	}
}

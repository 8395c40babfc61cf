package passhash_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/userkit/users/internal/passhash"
	"github.com/userkit/users/internal/soak"
)

// vector is one line of testdata/imported-hashes/vectors.jsonl (see make.py
// there for how each was made).
type vector struct {
	Format        string `json:"format"`
	Password      string `json:"password"`
	Hash          string `json:"hash"`
	Source        string `json:"source"`
	SignerKey     string `json:"signer_key"`
	SaltSeparator string `json:"salt_separator"`
	Rounds        int    `json:"rounds"`
	MemCost       int    `json:"mem_cost"`
	Slow          bool   `json:"slow"` // at a realistic cost: hundreds of milliseconds
}

func vectors(tb testing.TB) []vector {
	tb.Helper()
	f, err := os.Open("../../testdata/imported-hashes/vectors.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func config(tb testing.TB, v vector) *passhash.Config {
	tb.Helper()
	c := &passhash.Config{}
	if v.SignerKey != "" {
		k, err1 := base64.StdEncoding.DecodeString(v.SignerKey)
		s, err2 := base64.StdEncoding.DecodeString(v.SaltSeparator)
		if err := errors.Join(err1, err2); err != nil {
			tb.Fatal(err)
		}
		c.Firebase = &passhash.Firebase{SignerKey: k, SaltSeparator: s, Rounds: v.Rounds, MemCost: v.MemCost}
	}
	return c
}

// TestVectors parses every vector and checks its format, and verifies the
// cheap ones with the right password and a wrong one. A vector at a realistic
// cost (hundreds of milliseconds, seconds under -race) is verified only when
// the tests are built with -tags soak: its check runs the code a cheap vector
// of its layout runs, with a larger number, and every realistic vector must
// have such a cheap one (make.py writes them).
func TestVectors(t *testing.T) {
	seen := map[string]bool{}
	cheap := map[string]bool{} // layouts
	vs := vectors(t)
	for _, v := range vs {
		if !v.Slow {
			cheap[layout(v)] = true
		}
	}
	for i, v := range vs {
		h, err := passhash.Parse(v.Hash, config(t, v))
		if err != nil {
			t.Errorf("%s %.40q: %v", v.Format, v.Hash, err)
			continue
		}
		seen[h.Format()] = true
		if h.Format() != v.Format {
			t.Errorf("%.40q: format %q, want %q", v.Hash, h.Format(), v.Format)
		}
		if v.Slow && !cheap[layout(v)] {
			t.Errorf("%s %.60q: a realistic cost with no cheap vector of its layout %q: add one to make.py", v.Format, v.Hash, layout(v))
		}
		if v.Slow && !soak.On {
			continue
		}
		t.Run(fmt.Sprintf("%s/%d", v.Format, i), func(t *testing.T) {
			t.Parallel() // the realistic costs take a while: use every core
			if !h.Verify([]byte(v.Password)) {
				t.Errorf("%s (%s) %.60q: the right password %q does not verify", v.Format, v.Source, v.Hash, v.Password)
			}
			// A wrong password is checked on the cheap vectors only: refusing it
			// does not depend on the cost.
			if !v.Slow && h.Verify([]byte(v.Password+"x")) {
				t.Errorf("%s %.60q: a wrong password verifies", v.Format, v.Hash)
			}
		})
	}
	for _, f := range passhash.Formats() {
		if !seen[f.Name] {
			t.Errorf("format %s has no vector", f.Name)
		}
	}
}

// layout is what a vector's check depends on but its cost: the format, and
// for the $-separated forms the fields before the salt and the key, with the
// numbers in them left out ("$pbkdf2$i=#", "pbkdf2_sha1$#", "bcrypt$$2b").
func layout(v vector) string {
	fields := strings.Split(v.Hash, "$")
	if len(fields) < 3 {
		return v.Format // one encoded blob: ASP.NET Identity's, Keycloak's JSON
	}
	fields = fields[:len(fields)-2]
	for i, f := range fields {
		if f != "" && strings.Trim(f, "0123456789") == "" {
			fields[i] = "#"
		}
	}
	return v.Format + " " + numberParam.ReplaceAllString(strings.Join(fields, "$"), "=#")
}

// numberParam is a number given as a parameter's value, "i=600000".
var numberParam = regexp.MustCompile(`=[0-9]+`)

// TestBounds: every cost parameter over its bound, and malformed strings,
// are refused when parsed, with the parameter named, so that no hash that
// passes Parse can make a check cost seconds.
func TestBounds(t *testing.T) {
	const salt, key = "AAECAwQFBgcICQoLDA0ODw", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	crypt86 := "ST/mWEmUvGaF8bR7RgZUdh5cwHaiiTTLMzdmz6VYMGgVtDKO8Huz6GcoOtpj0X0zfFtfnn1aYJnZLSFBw4K2p0"
	bc := "$2b$31$PwF3.GfsXeZUZ7.jhSlUeeVCqzYCIqJ4PgHmk3dWbAJNZl6LrQtjK"
	keycloak := func(alg string, it int, extra string) string {
		sec, _ := json.Marshal(map[string]string{"value": key + "=", "salt": salt + "=="})
		data := `{"hashIterations":` + itoa(it) + `,"algorithm":"` + alg + `","additionalParameters":{` + extra + `}}`
		b, _ := json.Marshal(map[string]string{"secretData": string(sec), "credentialData": data})
		return string(b)
	}
	for _, c := range []struct{ hash, param string }{
		{"$argon2id$v=19$m=1048576,t=1,p=4$" + salt + "$" + key, "memory"},
		{"$argon2id$v=19$m=65536,t=100,p=4$" + salt + "$" + key, "iterations"},
		{"$argon2id$v=19$m=262144,t=2,p=4$" + salt + "$" + key, "iterations"}, // memory × passes
		{"$argon2i$v=19$m=65536,t=2,p=64$" + salt + "$" + key, "parallelism"},
		{"$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key, "version"},
		{"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$" + key, "salt"}, // 4 bytes
		{"$argon2id$v=19$m=65536,t=2,p=1,x=3$" + salt + "$" + key, ""},
		{"$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key, ""},
		{"$scrypt$ln=21,r=8,p=1$" + salt + "$" + key, "n"},
		{"$scrypt$ln=18,r=8,p=1$" + salt + "$" + key, "n"}, // 256 MiB
		{"$scrypt$ln=14,r=64,p=1$" + salt + "$" + key, "r"},
		{"$scrypt$ln=14,r=8,p=32$" + salt + "$" + key, "p"},
		{"$scrypt$ln=16,r=8,p=8$" + salt + "$" + key, "p"}, // work
		{"$pbkdf2-sha256$i=5000000,l=32$" + salt + "$" + key, "iterations"},
		{"$pbkdf2-sha256$5000000$" + salt + "$" + key, "iterations"},
		{"$pbkdf2-sha256$i=1000000,l=64$" + salt + "$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw", "iterations"}, // two blocks
		{"$pbkdf2-sha512$i=1100000$" + salt + "$" + key, "iterations"},
		{"$pbkdf2-sha256$i=1000,l=16$" + salt + "$" + key, "key_length"},
		{"$pbkdf2-sha256$i=01000$" + salt + "$" + key, "iterations"},
		{"pbkdf2_sha256$99999999$salt$" + key + "=", "iterations"},
		{"$6$rounds=999999999$saltsaltsalt$" + crypt86, "rounds"},
		{"$6$rounds=1000001$saltsaltsalt$" + crypt86, "rounds"},
		{"$6$saltsaltsaltsaltsalt$" + crypt86, "salt"},
		{"$6$saltsaltsalt$short", ""},
		{"bcrypt_sha256$" + bc, "cost"},
		{"bcrypt$" + bc, "cost"},
		{keycloak("pbkdf2-sha256", 10_000_000, ""), "iterations"},
		{keycloak("argon2", 5, `"memory":["4194304"]`), "memory"},
		{keycloak("argon2", 5, `"type":["d"]`), "type"},
		{keycloak("md5", 5, ""), ""},
		{"AQAAAAF/////AAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "iterations"},
		{"AQAAAAN/////AAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "prf"},
		{"AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=", ""}, // too short (ASP.NET's own failure case)
		{"$firebase-scrypt$" + salt + "==$" + key + "=", ""}, // no project parameters
	} {
		_, err := passhash.Parse(c.hash, nil)
		var pe *passhash.ParamError
		if !errors.As(err, &pe) || pe.Param != c.param {
			t.Errorf("Parse(%.70q) = %v; want a ParamError on %q", c.hash, err, c.param)
		}
	}
	long := "$6$" + string(make([]byte, passhash.MaxLength))
	if _, err := passhash.Parse(long, nil); err == nil {
		t.Errorf("Parse of %d bytes succeeded", len(long))
	}
	for _, s := range []string{"", "plain", "$2a$10$abc", "$1$md5$hash", "$y$yescrypt"} {
		if _, err := passhash.Parse(s, nil); !errors.Is(err, passhash.ErrUnknownFormat) {
			t.Errorf("Parse(%q) = %v; want ErrUnknownFormat", s, err)
		}
	}
}

// TestFirebaseParams: a project's parameters are bounded too.
func TestFirebaseParams(t *testing.T) {
	key := make([]byte, 64)
	for _, c := range []struct {
		p     passhash.Firebase
		param string
	}{
		{passhash.Firebase{SignerKey: key, Rounds: 9, MemCost: 14}, "rounds"},
		{passhash.Firebase{SignerKey: key, Rounds: 8, MemCost: 16}, "mem_cost"},
		{passhash.Firebase{SignerKey: key[:8], Rounds: 8, MemCost: 14}, "signer_key"},
	} {
		var pe *passhash.ParamError
		if err := passhash.CheckFirebase(&c.p); !errors.As(err, &pe) || pe.Param != c.param {
			t.Errorf("CheckFirebase(%+v) = %v; want a ParamError on %q", c.p, err, c.param)
		}
	}
	if err := passhash.CheckFirebase(&passhash.Firebase{SignerKey: key, Rounds: 8, MemCost: 14}); err != nil {
		t.Errorf("Firebase's sample parameters: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// Package passhash verifies password hashes made by other systems, so that
// users moved in from them log in with their old passwords. Every format in
// Formats is recognised from the hash string alone (Firebase's too, in the
// form this package gives it), and every cost parameter is bounded when the
// string is parsed: a hash that passes Parse costs about a second at most to
// verify on one loaded core (SECURITY.md has the measurements), whatever its
// author chose.
//
// Parse and Hash.Verify are safe for concurrent use.
package passhash

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// MaxLength is the longest hash string Parse reads.
const MaxLength = 4096

// Bounds on the cost parameters, listed with their measured cost in
// SECURITY.md ("Imported hashes"); a hash over one is refused with a
// *ParamError naming the parameter.
const (
	// Argon2: memory in KiB, passes, lanes, and memory × passes.
	MaxArgon2Memory      = 256 * 1024
	MaxArgon2Iterations  = 16
	MaxArgon2Parallelism = 16
	MaxArgon2Work        = 256 * 1024

	// scrypt: N (a power of two), r, p, the memory 128·N·r and the work
	// 128·N·r·p, in bytes.
	MaxScryptN      = 1 << 20
	MaxScryptR      = 32
	MaxScryptP      = 16
	MaxScryptMemory = 64 << 20
	MaxScryptWork   = 64 << 20

	// PBKDF2: iterations times the blocks of output (a key longer than the
	// digest costs one full run per digest length), by digest.
	MaxPBKDF2SHA1Work   = 1_300_000
	MaxPBKDF2SHA256Work = 1_300_000
	MaxPBKDF2SHA512Work = 700_000

	// SHA-crypt ($5$, $6$): rounds.
	MaxSHACryptRounds = 1_000_000

	// Firebase's scrypt: its rounds (scrypt's r) and mem_cost (log2 N).
	MaxFirebaseRounds  = 8
	MaxFirebaseMemCost = 15
)

// ErrUnknownFormat is returned by Parse for a string in none of the formats.
var ErrUnknownFormat = errors.New("passhash: unknown format")

// ParamError reports a hash that is malformed or has a parameter out of
// bounds. Param is the parameter ("memory", "iterations", "parallelism", "n",
// "r", "p", "rounds", "cost", "salt", "key_length", "version"), or empty when
// the string as a whole is malformed.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	if e.Param == "" {
		return "passhash: " + e.Reason
	}
	return "passhash: " + e.Param + " " + e.Reason
}

func malformed(reason string) error { return &ParamError{Reason: reason} }

func outOfRange(param string, v, lo, hi int) error {
	return &ParamError{Param: param, Reason: "is " + strconv.Itoa(v) + ", must be between " + strconv.Itoa(lo) + " and " + strconv.Itoa(hi)}
}

// Hash is a parsed hash within bounds.
type Hash interface {
	// Format names the format, as in Formats.
	Format() string
	// Verify reports whether password (the bytes the old system was given)
	// matches, in time that does not depend on where a mismatch is.
	Verify(password []byte) bool
}

// Config holds what a hash string cannot carry.
type Config struct {
	// MaxBcryptCost bounds the cost of bcrypt hashes inside other formats
	// (Django's bcrypt and bcrypt_sha256). Zero means 14.
	MaxBcryptCost int
	// Firebase holds a Firebase project's hash parameters; nil refuses
	// Firebase hashes.
	Firebase *Firebase
}

// Format is one recognised format.
type Format struct {
	Name    string // e.g. "argon2id"
	Example string // the shape of the string
	Source  string // who writes it
	match   func(s string) bool
	parse   func(s string, c *Config) (Hash, error)
}

func prefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

// formats is the table of formats, tried in order.
var formats = []Format{
	{Name: "argon2id", Example: "$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH", Source: "PHC string (argon2 CLI, argon2-cffi, libsodium)", match: prefix("$argon2id$"), parse: parseArgon2PHC},
	{Name: "argon2i", Example: "$argon2i$v=19$m=65536,t=3,p=4$SALT$HASH", Source: "PHC string", match: prefix("$argon2i$"), parse: parseArgon2PHC},
	{Name: "scrypt", Example: "$scrypt$ln=15,r=8,p=1$SALT$HASH", Source: "PHC string (passlib)", match: prefix("$scrypt$"), parse: parseScryptPHC},
	{Name: "pbkdf2-sha256", Example: "$pbkdf2-sha256$i=600000,l=32$SALT$HASH or $pbkdf2-sha256$600000$SALT$HASH", Source: "PHC string (passlib)", match: prefix("$pbkdf2-sha256$"), parse: parsePBKDF2PHC},
	{Name: "pbkdf2-sha512", Example: "$pbkdf2-sha512$i=210000,l=64$SALT$HASH", Source: "PHC string (passlib)", match: prefix("$pbkdf2-sha512$"), parse: parsePBKDF2PHC},
	{Name: "pbkdf2-sha1", Example: "$pbkdf2$i=1300000,l=20$SALT$HASH", Source: "PHC string (passlib)", match: prefix("$pbkdf2$"), parse: parsePBKDF2PHC},
	{Name: "django-pbkdf2", Example: "pbkdf2_sha256$1000000$SALT$HASH (also pbkdf2_sha1)", Source: "Django auth_user.password", match: isDjangoPBKDF2, parse: parseDjangoPBKDF2},
	{Name: "django-argon2", Example: "argon2$argon2id$v=19$m=102400,t=2,p=8$SALT$HASH", Source: "Django auth_user.password", match: prefix("argon2$"), parse: parseDjangoArgon2},
	{Name: "django-bcrypt", Example: "bcrypt_sha256$$2b$12$… or bcrypt$$2b$12$…", Source: "Django auth_user.password", match: isDjangoBcrypt, parse: parseDjangoBcrypt},
	{Name: "sha512-crypt", Example: "$6$rounds=656000$SALT$HASH", Source: "crypt(3), /etc/shadow", match: prefix("$6$"), parse: parseSHACrypt},
	{Name: "sha256-crypt", Example: "$5$rounds=535000$SALT$HASH", Source: "crypt(3), /etc/shadow", match: prefix("$5$"), parse: parseSHACrypt},
	{Name: "firebase-scrypt", Example: "$firebase-scrypt$SALT$HASH (the export's salt and passwordHash, base64)", Source: "firebase auth:export, with the project's parameters in Config", match: prefix("$firebase-scrypt$"), parse: parseFirebase},
	{Name: "keycloak", Example: `{"secretData":"{\"value\":…,\"salt\":…}","credentialData":"{\"hashIterations\":…,\"algorithm\":…}"}`, Source: "a Keycloak realm export's password credential", match: prefix("{"), parse: parseKeycloak},
	{Name: "aspnet-identity", Example: "AQAAAAIAAYagAAAAE… (v3) or AJlB… (v2)", Source: "ASP.NET Core Identity PasswordHash column", match: isASPNet, parse: parseASPNet},
}

// Formats returns the recognised formats, in the order Parse tries them.
func Formats() []Format { return append([]Format(nil), formats...) }

// Parse recognises s and checks its parameters. It returns ErrUnknownFormat
// for a string in no format, and a *ParamError for a malformed string or a
// parameter out of bounds. c may be nil.
func Parse(s string, c *Config) (Hash, error) {
	if c == nil {
		c = &Config{}
	}
	if len(s) > MaxLength {
		return nil, malformed("is longer than " + strconv.Itoa(MaxLength) + " bytes")
	}
	for _, f := range formats {
		if f.match(s) {
			return f.parse(s, c)
		}
	}
	return nil, ErrUnknownFormat
}

// equal compares two derived keys in constant time.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// decodeB64 decodes the unpadded base64 of PHC strings, also with padding
// and with passlib's "." for "+".
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.ReplaceAll(s, ".", "+"), "=")
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

// decodeStd decodes padded standard base64.
func decodeStd(s string) ([]byte, error) {
	return base64.StdEncoding.Strict().DecodeString(s)
}

// checkSalt bounds a salt's length.
func checkSalt(salt []byte, min int) error {
	if len(salt) < min || len(salt) > 1024 {
		return outOfRange("salt", len(salt), min, 1024)
	}
	return nil
}

// checkKey bounds a derived key's length.
func checkKey(key []byte, min, max int) error {
	if len(key) < min || len(key) > max {
		return &ParamError{Param: "key_length", Reason: "is " + strconv.Itoa(len(key)) + " bytes, must be between " + strconv.Itoa(min) + " and " + strconv.Itoa(max)}
	}
	return nil
}

// atoi parses a decimal without sign or leading zeros, up to 10 digits.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// params parses "k1=v1,k2=v2" with exactly the keys given, in that order
// (optional ones may be missing, marked with a trailing "?").
func params(s string, keys ...string) (map[string]int, error) {
	out := make(map[string]int, len(keys))
	parts := strings.Split(s, ",")
	i := 0
	for _, k := range keys {
		optional := strings.HasSuffix(k, "?")
		k = strings.TrimSuffix(k, "?")
		if i < len(parts) {
			name, v, ok := strings.Cut(parts[i], "=")
			if ok && name == k {
				n, ok := atoi(v)
				if !ok {
					return nil, &ParamError{Param: paramName(k), Reason: "is not a number"}
				}
				out[k] = n
				i++
				continue
			}
		}
		if !optional {
			return nil, malformed("has no " + k + "= parameter")
		}
	}
	if i != len(parts) {
		return nil, malformed("has unknown parameters " + strconv.Quote(strings.Join(parts[i:], ",")))
	}
	return out, nil
}

// paramName maps a PHC parameter key to the name errors use.
func paramName(k string) string {
	switch k {
	case "m":
		return "memory"
	case "t", "i":
		return "iterations"
	case "l":
		return "key_length"
	case "ln":
		return "n"
	}
	return k
}

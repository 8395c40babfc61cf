package passhash

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Django's auth_user.password: ALGORITHM$…, see
// django/contrib/auth/hashers.py.

func isDjangoPBKDF2(s string) bool {
	return strings.HasPrefix(s, "pbkdf2_sha256$") || strings.HasPrefix(s, "pbkdf2_sha1$")
}

// parseDjangoPBKDF2 reads pbkdf2_sha256$ITERATIONS$SALT$HASH: the salt is
// used as its UTF-8 text, the hash is padded base64 of a digest-sized key.
func parseDjangoPBKDF2(s string, _ *Config) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return nil, malformed("is not pbkdf2_sha256$iterations$salt$hash")
	}
	digest := strings.TrimPrefix(f[0], "pbkdf2_")
	iterations, ok := atoi(f[1])
	if !ok {
		return nil, &ParamError{Param: "iterations", Reason: "is not a number"}
	}
	key, err := decodeStd(f[3])
	if err != nil {
		return nil, malformed("hash is not base64")
	}
	if len(key) != digests[digest].size {
		return nil, &ParamError{Param: "key_length", Reason: "must be the digest's size"}
	}
	return newPBKDF2("django-pbkdf2", digest, iterations, []byte(f[2]), key, 20)
}

// parseDjangoArgon2 reads argon2$argon2id$v=19$…: a PHC string after
// Django's "argon2" tag.
func parseDjangoArgon2(s string, c *Config) (Hash, error) {
	h, err := parseArgon2PHC(strings.TrimPrefix(s, "argon2"), c)
	if err != nil {
		return nil, err
	}
	h.(*argon2Hash).format = "django-argon2"
	return h, nil
}

func isDjangoBcrypt(s string) bool {
	return strings.HasPrefix(s, "bcrypt_sha256$") || strings.HasPrefix(s, "bcrypt$")
}

// bcryptHash is a bcrypt hash of the password (Django's bcrypt) or of the
// lower-case hex of its SHA-256 (bcrypt_sha256).
type bcryptHash struct {
	sha256 bool
	hash   []byte
}

func (h *bcryptHash) Format() string { return "django-bcrypt" }

func (h *bcryptHash) Verify(pw []byte) bool {
	if h.sha256 {
		sum := sha256.Sum256(pw)
		pw = []byte(hex.EncodeToString(sum[:]))
	} else if len(pw) > 72 {
		return false // bcrypt would read only a prefix: never let one match
	}
	return bcrypt.CompareHashAndPassword(h.hash, pw) == nil
}

// parseDjangoBcrypt reads bcrypt_sha256$$2b$12$… and bcrypt$$2b$12$….
func parseDjangoBcrypt(s string, c *Config) (Hash, error) {
	tag, b, _ := strings.Cut(s, "$")
	if len(b) != 60 || (b[:4] != "$2a$" && b[:4] != "$2b$" && b[:4] != "$2y$") {
		return nil, malformed("is not " + tag + "$ followed by a bcrypt hash")
	}
	cost, err := bcrypt.Cost([]byte(b))
	if err != nil {
		return nil, malformed("is not " + tag + "$ followed by a bcrypt hash")
	}
	if max := or(c.MaxBcryptCost, 14); cost > max {
		return nil, outOfRange("cost", cost, bcrypt.MinCost, max)
	}
	return &bcryptHash{sha256: tag == "bcrypt_sha256", hash: []byte(b)}, nil
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Keycloak: a password credential of a realm export, whose secretData and
// credentialData are JSON documents in strings (see Keycloak's
// PasswordCredentialModel).
type keycloakCredential struct {
	SecretData     string `json:"secretData"`
	CredentialData string `json:"credentialData"`
}

type keycloakSecret struct {
	Value string `json:"value"`
	Salt  string `json:"salt"`
}

type keycloakData struct {
	HashIterations       int                 `json:"hashIterations"`
	Algorithm            string              `json:"algorithm"`
	AdditionalParameters map[string][]string `json:"additionalParameters"`
}

// parseKeycloak reads a credential's JSON, with pbkdf2, pbkdf2-sha256,
// pbkdf2-sha512 or argon2.
func parseKeycloak(s string, _ *Config) (Hash, error) {
	var cred keycloakCredential
	var sec keycloakSecret
	var data keycloakData
	if json.Unmarshal([]byte(s), &cred) != nil || cred.SecretData == "" || cred.CredentialData == "" ||
		json.Unmarshal([]byte(cred.SecretData), &sec) != nil || json.Unmarshal([]byte(cred.CredentialData), &data) != nil {
		return nil, malformed("is not a Keycloak password credential (secretData and credentialData)")
	}
	salt, err := decodeStd(sec.Salt)
	if err != nil {
		return nil, &ParamError{Param: "salt", Reason: "is not base64"}
	}
	key, err := decodeStd(sec.Value)
	if err != nil {
		return nil, malformed("value is not base64")
	}
	digest := ""
	switch data.Algorithm {
	case "pbkdf2":
		digest = "sha1"
	case "pbkdf2-sha256":
		digest = "sha256"
	case "pbkdf2-sha512":
		digest = "sha512"
	case "argon2":
		return keycloakArgon2(data, salt, key)
	default:
		return nil, malformed("algorithm " + strconv.Quote(data.Algorithm) + " is not pbkdf2, pbkdf2-sha256, pbkdf2-sha512 or argon2")
	}
	return newPBKDF2("keycloak", digest, data.HashIterations, salt, key, 16)
}

// keycloakArgon2 reads Keycloak's Argon2 parameters: type, version, memory
// (KiB), parallelism and hashLength in additionalParameters, iterations in
// hashIterations.
func keycloakArgon2(data keycloakData, salt, key []byte) (Hash, error) {
	get := func(k, def string) string {
		if v := data.AdditionalParameters[k]; len(v) == 1 {
			return v[0]
		}
		return def
	}
	if v := get("version", "1.3"); v != "1.3" {
		return nil, &ParamError{Param: "version", Reason: "must be 1.3"}
	}
	var id bool
	switch get("type", "id") {
	case "id":
		id = true
	case "i":
	default:
		return nil, &ParamError{Param: "type", Reason: "must be id or i (argon2d is not supported)"}
	}
	m, ok1 := atoi(get("memory", "7168"))
	p, ok2 := atoi(get("parallelism", "1"))
	if !ok1 {
		return nil, &ParamError{Param: "memory", Reason: "is not a number"}
	}
	if !ok2 {
		return nil, &ParamError{Param: "parallelism", Reason: "is not a number"}
	}
	if l, ok := atoi(get("hashLength", strconv.Itoa(len(key)))); !ok || l != len(key) {
		return nil, &ParamError{Param: "key_length", Reason: "hashLength does not match the value"}
	}
	return newArgon2("keycloak", id, m, data.HashIterations, p, salt, key)
}

// ASP.NET Core Identity's PasswordHasher: base64 of a version byte and a
// PBKDF2 hash. Version 2 (0x00): salt 16 bytes, key 32 bytes, HMAC-SHA1, 1,000
// iterations. Version 3 (0x01): PRF, iterations and salt length as big-endian
// uint32s, then the salt and the key.

func isASPNet(s string) bool {
	return len(s) >= 44 && s[0] == 'A' && strings.IndexByte(s, '$') < 0
}

func parseASPNet(s string, _ *Config) (Hash, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, malformed("is not base64 of an ASP.NET Core Identity hash")
	}
	switch b[0] {
	case 0x00:
		if len(b) != 1+16+32 {
			return nil, malformed("is not a version 2 ASP.NET Core Identity hash (49 bytes)")
		}
		return newPBKDF2("aspnet-identity", "sha1", 1000, b[1:17], b[17:], 32)
	case 0x01:
		if len(b) < 13 {
			return nil, malformed("is too short for a version 3 ASP.NET Core Identity hash")
		}
		prf := binary.BigEndian.Uint32(b[1:])
		iterations := binary.BigEndian.Uint32(b[5:])
		saltLen := binary.BigEndian.Uint32(b[9:])
		digest := map[uint32]string{0: "sha1", 1: "sha256", 2: "sha512"}[prf]
		if digest == "" {
			return nil, &ParamError{Param: "prf", Reason: "must be 0 (SHA-1), 1 (SHA-256) or 2 (SHA-512)"}
		}
		if saltLen < 16 || uint64(saltLen) > uint64(len(b)-13) {
			return nil, &ParamError{Param: "salt", Reason: "length is out of range"}
		}
		if iterations > 1<<30 {
			iterations = 1 << 30 // refused below, with the number it says
		}
		return newPBKDF2("aspnet-identity", digest, int(iterations), b[13:13+saltLen], b[13+saltLen:], 16)
	}
	return nil, malformed("has an unknown ASP.NET Core Identity version")
}

// Firebase is a Firebase project's password hash parameters, as its console
// shows them ("Password hash parameters"), decoded from base64.
type Firebase struct {
	SignerKey     []byte
	SaltSeparator []byte
	Rounds        int // scrypt's r, 1 to MaxFirebaseRounds
	MemCost       int // log2 of scrypt's N, 1 to MaxFirebaseMemCost
}

// firebaseHash is Firebase's modified scrypt: the key is scrypt(password,
// salt‖separator, 2^MemCost, Rounds, 1, 32), the hash is the signer key
// encrypted under it with AES-256-CTR and a zero IV.
type firebaseHash struct {
	p         *Firebase
	salt, key []byte
}

func (h *firebaseHash) Format() string { return "firebase-scrypt" }

func (h *firebaseHash) Verify(pw []byte) bool {
	salt := append(append([]byte(nil), h.salt...), h.p.SaltSeparator...)
	k, err := scrypt.Key(pw, salt, 1<<h.p.MemCost, h.p.Rounds, 1, 32)
	if err != nil {
		return false
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return false
	}
	out := make([]byte, len(h.p.SignerKey))
	cipher.NewCTR(block, make([]byte, aes.BlockSize)).XORKeyStream(out, h.p.SignerKey)
	return equal(out, h.key)
}

// CheckFirebase checks a project's parameters against MaxFirebaseRounds and
// MaxFirebaseMemCost, and that the signer key has at least 16 bytes; it
// returns a *ParamError on "rounds", "mem_cost" or "signer_key".
func CheckFirebase(p *Firebase) error {
	switch {
	case len(p.SignerKey) < 16:
		return &ParamError{Param: "signer_key", Reason: "must be at least 16 bytes"}
	case p.Rounds < 1 || p.Rounds > MaxFirebaseRounds:
		return outOfRange("rounds", p.Rounds, 1, MaxFirebaseRounds)
	case p.MemCost < 1 || p.MemCost > MaxFirebaseMemCost:
		return outOfRange("mem_cost", p.MemCost, 1, MaxFirebaseMemCost)
	}
	return nil
}

// parseFirebase reads $firebase-scrypt$SALT$HASH, SALT and HASH in padded
// base64 as an export gives them.
func parseFirebase(s string, c *Config) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return nil, malformed("is not $firebase-scrypt$salt$hash")
	}
	if c.Firebase == nil {
		return nil, malformed("is a Firebase hash, but no Firebase project parameters are configured")
	}
	salt, err := decodeStd(f[2])
	if err != nil {
		return nil, &ParamError{Param: "salt", Reason: "is not base64"}
	}
	key, err := decodeStd(f[3])
	if err != nil {
		return nil, malformed("hash is not base64")
	}
	if err := checkSalt(salt, 0); err != nil {
		return nil, err
	}
	if len(key) != len(c.Firebase.SignerKey) {
		return nil, &ParamError{Param: "key_length", Reason: "must be the signer key's length"}
	}
	return &firebaseHash{p: c.Firebase, salt: salt, key: key}, nil
}

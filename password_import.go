package users

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users/internal/passhash"
)

// Imported password hashes. Besides bcrypt and this package's own format
// (password.go), NewUser.PasswordHash takes the formats of
// internal/passhash, each recognised from the string alone:
//
//	format            example                                      made by
//	argon2id/argon2i  $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH      PHC string (argon2, argon2-cffi, libsodium)
//	scrypt            $scrypt$ln=15,r=8,p=1$SALT$HASH               PHC string (passlib)
//	pbkdf2-sha256/512 $pbkdf2-sha256$i=600000,l=32$SALT$HASH        PHC string, or passlib's $pbkdf2-sha256$ROUNDS$…
//	pbkdf2-sha1       $pbkdf2$i=1300000$SALT$HASH                   PHC string (passlib)
//	django-pbkdf2     pbkdf2_sha256$1000000$SALT$HASH               Django (also pbkdf2_sha1)
//	django-argon2     argon2$argon2id$v=19$m=102400,t=2,p=8$…       Django
//	django-bcrypt     bcrypt_sha256$$2b$12$… or bcrypt$$2b$12$…     Django
//	sha512-crypt      $6$rounds=656000$SALT$HASH                    crypt(3), /etc/shadow
//	sha256-crypt      $5$rounds=535000$SALT$HASH                    crypt(3)
//	keycloak          {"secretData":"…","credentialData":"…"}       a Keycloak realm export's password credential
//	aspnet-identity   AQAAAAIAAYagAAAAE… (v3), AJlB… (v2)           ASP.NET Core Identity
//	firebase-scrypt   $firebase-scrypt$SALT$HASH                    firebase auth:export's salt and passwordHash, with Options.FirebaseScrypt
//
// Their cost parameters are bounded (internal/passhash's Max constants,
// listed in SECURITY.md) when the hash is given and again at each login.

// FirebaseScrypt holds a Firebase project's password hash parameters, as the
// Firebase console shows them (Authentication, Users, "Password hash
// parameters"), so that users exported with firebase auth:export log in with
// their passwords. Its fields are the decoded base64 values.
type FirebaseScrypt struct {
	SignerKey     []byte // base64_signer_key, decoded: at least 16 bytes
	SaltSeparator []byte // base64_salt_separator, decoded
	Rounds        int    // rounds: 1 to 8
	MemCost       int    // mem_cost: 1 to 15
}

// hashConfig builds what internal/passhash needs from the options; it
// returns a *ValidationError on "options.FirebaseScrypt.…".
func hashConfig(maxCost int, fb *FirebaseScrypt) (*passhash.Config, error) {
	c := &passhash.Config{MaxBcryptCost: maxCost}
	if fb != nil {
		p := &passhash.Firebase{
			SignerKey:     append([]byte(nil), fb.SignerKey...),
			SaltSeparator: append([]byte(nil), fb.SaltSeparator...),
			Rounds:        fb.Rounds,
			MemCost:       fb.MemCost,
		}
		if err := passhash.CheckFirebase(p); err != nil {
			var pe *passhash.ParamError
			errors.As(err, &pe)
			field := map[string]string{"signer_key": "SignerKey", "rounds": "Rounds", "mem_cost": "MemCost"}[pe.Param]
			return nil, invalid("options.FirebaseScrypt."+field, ValidationOutOfRange, pe.Reason)
		}
		c.Firebase = p
	}
	return c, nil
}

// checkImportedHash checks a NewUser.PasswordHash for Create and Import: a
// hash of this package's format or an imported bcrypt hash, at a cost no
// higher than Options.MaxBcryptCost, or a hash in one of the other formats
// with its parameters within bounds. It returns a *ValidationError on
// "password_hash", or on "password_hash.PARAM" (cost, memory, iterations,
// parallelism, n, r, p, rounds, salt, key_length, version…) for a parameter
// out of bounds.
func (m *Manager) checkImportedHash(h string) error {
	if isImportedBcrypt(h) || isOwnHash(h) {
		if cost := bcryptCost(h); !m.bcryptCostOK(cost) {
			return invalid("password_hash.cost", ValidationOutOfRange, "bcrypt cost "+strconv.Itoa(cost)+" is above the maximum, "+strconv.Itoa(m.maxCost)+" (Options.MaxBcryptCost)")
		}
		return nil
	}
	_, err := passhash.Parse(h, m.hashCfg)
	var pe *passhash.ParamError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe) && pe.Param != "":
		return invalid("password_hash."+pe.Param, ValidationOutOfRange, pe.Reason)
	case errors.As(err, &pe):
		return invalid("password_hash", ValidationMalformed, pe.Reason)
	}
	return invalid("password_hash", ValidationMalformed, "must be a bcrypt hash ($2a$, $2b$ or $2y$), a hash in this package's format ("+hashPrefix+"…) or one of the imported formats (Argon2, scrypt, PBKDF2, Django, Keycloak, ASP.NET Identity, Firebase scrypt, SHA-crypt)")
}

// parseOtherHash parses a stored hash in one of internal/passhash's formats,
// within bounds, or returns nil.
func (m *Manager) parseOtherHash(h string) passhash.Hash {
	if h == "" || h[0] == '$' && strings.HasPrefix(h, "$2") {
		return nil
	}
	p, err := passhash.Parse(h, m.hashCfg)
	if err != nil {
		return nil
	}
	return p
}

// isImportedHash reports whether a stored hash came from another system: any
// hash that is not empty and not in this package's format.
func isImportedHash(h string) bool {
	return h != "" && !strings.HasPrefix(h, hashPrefix)
}

// bcryptCost returns the cost of a bcrypt hash, of ours or imported, or -1.
func bcryptCost(h string) int {
	cost, err := bcrypt.Cost([]byte(strings.TrimPrefix(h, hashPrefix)))
	if err != nil {
		return -1
	}
	return cost
}

// bcryptCostOK reports whether a stored hash's cost may be computed at a
// login: at most Options.MaxBcryptCost, or the Manager's own cost.
func (m *Manager) bcryptCostOK(cost int) bool {
	return cost <= m.maxCost || cost == m.cost
}

package users

// SetCompareHook installs f to be called once for every bcrypt comparison m
// runs, so tests can count them. Call it before m is used.
func SetCompareHook(m *Manager, f func()) { m.onCompare = f }

// HashPrefix is the marker of this package's password-hash format.
const HashPrefix = hashPrefix

// NormalizePassword is the package's password normalisation (NFKC and the form
// and length checks, with min as the minimum length): the form a password is
// hashed and compared in, or the *ValidationError on "password" that refuses it.
func NormalizePassword(pw string, min int) (string, error) {
	return normalizePassword("password", pw, min)
}

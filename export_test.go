package users

// SetCompareHook installs f to be called once for every bcrypt comparison m
// runs, so tests can count them. Call it before m is used.
func SetCompareHook(m *Manager, f func()) { m.onCompare = f }

// HashPrefix is the marker of this package's password-hash format.
const HashPrefix = hashPrefix

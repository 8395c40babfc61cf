package users

import (
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// checkImportedHash checks a NewUser.PasswordHash for Create and Import: a
// hash of this package's format or an imported bcrypt hash, at a cost no
// higher than Options.MaxBcryptCost. It returns a *ValidationError on
// "password_hash", or on "password_hash.cost" for a cost over the bound.
func (m *Manager) checkImportedHash(h string) error {
	if !isImportedBcrypt(h) && !isOwnHash(h) {
		return invalid("password_hash", "must be a bcrypt hash ($2a$, $2b$ or $2y$) or a hash in this package's format ("+hashPrefix+"…)")
	}
	if cost := bcryptCost(h); !m.bcryptCostOK(cost) {
		return invalid("password_hash.cost", "bcrypt cost "+strconv.Itoa(cost)+" is above the maximum, "+strconv.Itoa(m.maxCost)+" (Options.MaxBcryptCost)")
	}
	return nil
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

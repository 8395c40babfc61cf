package users

import (
	"context"
	"time"
)

// CeremonyKind names what a ceremony may finish; a ceremony finishes only as
// the kind it was begun as.
type CeremonyKind string

// The kinds of ceremonies.
const (
	CeremonyPasskeyRegistration CeremonyKind = "passkey_registration"
	CeremonyPasskeyLogin        CeremonyKind = "passkey_login" // passwordless: no user until it finishes
	// CeremonyPasskeyFactor proves a passkey of a known user: the second
	// step of a login, or a step-up.
	CeremonyPasskeyFactor CeremonyKind = "passkey_factor"
)

// CeremonyRecord is what a Store keeps of a ceremony begun with the browser
// and waiting for its answer, such as a passkey registration: the SHA-256 of
// its challenge, never the challenge itself.
type CeremonyRecord struct {
	Hash      []byte // SHA-256 of the challenge, 32 bytes
	Kind      CeremonyKind
	UserID    string // the user it is bound to; empty for a ceremony that names no user yet
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Clone returns a deep copy of c.
func (c *CeremonyRecord) Clone() *CeremonyRecord {
	if c == nil {
		return nil
	}
	d := *c
	d.Hash = append([]byte(nil), c.Hash...)
	return &d
}

// CeremonyStore keeps ceremonies waiting for the browser's answer, found by
// the SHA-256 of their challenge and their kind: the part of Store that makes
// a challenge single-use across every Manager over one store;
// storetest.RunCeremonies checks it alone.
//
// Not found: a ceremony that is not there, or is there as another kind, gives
// ErrNotFound. Conflict: CreateCeremony gives ErrConflict for a taken hash.
// Atomicity: ConsumeCeremony finds and deletes in one step, so a challenge is
// answered once. A Store keeps UserID as it is given and checks nothing about
// it: the Manager checks the user when the ceremony finishes, and
// DeleteExpired reclaims ceremonies whatever their user.
//
// Every method must be safe for concurrent use, must check ctx before doing
// work, and must return copies, as Store says.
type CeremonyStore interface {
	// CreateCeremony stores a new ceremony, or returns ErrConflict, writing
	// nothing, if c.Hash is taken.
	CreateCeremony(ctx context.Context, c *CeremonyRecord, audit ...*AuditEntry) error

	// ConsumeCeremony atomically finds the ceremony with this hash and kind,
	// deletes it and returns it, whatever its expiry: of any number of
	// concurrent calls for one ceremony, exactly one gets it. It returns
	// ErrNotFound, deleting nothing, if there is no such ceremony or its kind
	// differs.
	ConsumeCeremony(ctx context.Context, hash []byte, kind CeremonyKind, audit ...*AuditEntry) (*CeremonyRecord, error)
}

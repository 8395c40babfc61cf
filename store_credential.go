package users

import (
	"context"
	"strings"
	"time"
)

// CredentialKind names a kind of credential: how its identifier is made and
// what its Data holds is the kind's business, never a Store's.
type CredentialKind string

// The kinds of credentials.
const (
	// CredentialPasskey is a WebAuthn public-key credential. Its identifier
	// is the credential ID the authenticator made (binary, up to 1,023 bytes).
	CredentialPasskey CredentialKind = "passkey"
	// CredentialOIDC is an identity at an external provider, linked to the
	// user. Its identifier names the provider (its issuer) and the subject
	// there.
	CredentialOIDC CredentialKind = "oidc"
)

// The sizes the Manager allows in a CredentialRecord. A Store need not check
// them; it may refuse larger values with an error of its own.
const (
	MaxCredentialIDLen   = 2048     // bytes of CredentialRecord.ID
	MaxCredentialNameLen = 256      // bytes of CredentialRecord.Name
	MaxCredentialDataLen = 64 << 10 // bytes of CredentialRecord.Data
)

// CredentialRecord is what a Store keeps for one credential: a way for a user
// to sign in other than the password (a passkey, a linked identity at an
// external provider, later an API key). A credential is named by its Kind and
// ID together; the same ID under another Kind is another credential.
//
// A Store keeps every field exactly as it is given and interprets none: Data
// in particular is the kind's own payload (a passkey's public key,
// transports and flags; an identity's sealed provider tokens), which the
// Manager encodes, seals where it holds secrets, and checks.
type CredentialRecord struct {
	Kind   CredentialKind
	ID     string // the identifier, unique per Kind; any bytes, compared exactly
	UserID string // the user it signs in

	// Name is the label the user chose ("work laptop"); it may be empty.
	Name string

	CreatedAt  time.Time
	LastUsedAt time.Time // the last sign-in with it, or zero

	// Counter is a number the Manager checks and advances in
	// UpdateCredential's fn, such as a passkey's signature counter: an
	// update that read an older Counter refuses, so of concurrent updates
	// from one value exactly one advances it.
	Counter int64

	// Data is the kind's payload, up to MaxCredentialDataLen bytes. A nil
	// and an empty Data are the same.
	Data []byte
}

// Clone returns a deep copy of c, for Store implementations that must hand
// out and keep copies.
func (c *CredentialRecord) Clone() *CredentialRecord {
	if c == nil {
		return nil
	}
	d := *c
	d.Data = append([]byte(nil), c.Data...)
	return &d
}

// CredentialGuard decides, inside the atomic step of DeleteCredential or
// RemovePassword, whether a way to sign in may go: it sees the user as
// stored and the credentials the user would keep, and returns an error to
// refuse. The Manager uses it to refuse removing the last way to sign in
// (no password, no passkey, no linked identity left): the two methods
// check the same rule from either side, and the Store serialises them for
// one user, so a password and the last credential removed at once cannot
// both go. A guard must only read what it is given and must not block; it
// may be called more than once.
type CredentialGuard func(u *UserRecord, rest []*CredentialRecord) error

// CredentialStore keeps credentials: ways to sign in other than the
// password, each of a CredentialKind and keyed by (Kind, ID), and belonging
// to one user. It is the part of Store that passkeys and linked identities
// build on; storetest.RunCredentials checks it alone.
//
// Not found is ErrNotFound: no credential with that (Kind, ID), not one of
// that user (DeleteCredential), or no such user (CreateCredential,
// RemovePassword). A conflict is ErrConflict: the
// (Kind, ID) is taken, by this user or another, and of any number of
// concurrent CreateCredential calls for one (Kind, ID) exactly one
// succeeds. Every method that writes does so in one atomic step with its
// audit entries (see Store), and DeleteUser deletes the user's credentials
// with the user.
//
// Every method must be safe for concurrent use, must check ctx before doing
// work, and must return copies, as Store says.
type CredentialStore interface {
	// CreateCredential stores a new credential. In one atomic step it checks
	// that the user c.UserID exists and that no credential has (c.Kind,
	// c.ID), and writes it: of any number of concurrent calls for one
	// (Kind, ID), exactly one succeeds. It returns ErrNotFound if the user
	// does not exist and ErrConflict if (c.Kind, c.ID) is taken, writing
	// nothing.
	CreateCredential(ctx context.Context, c *CredentialRecord, audit ...*AuditEntry) error

	// GetCredential returns the credential (kind, id), or ErrNotFound.
	GetCredential(ctx context.Context, kind CredentialKind, id string) (*CredentialRecord, error)

	// ListCredentials returns the user's credentials of every kind in
	// ascending CreatedAt order (ties by Kind, then ID, bytewise). A user
	// without credentials, or no such user, gives an empty slice.
	ListCredentials(ctx context.Context, userID string) ([]*CredentialRecord, error)

	// UpdateCredential atomically reads the credential (kind, id), calls fn
	// with a copy, and writes what fn left in it. No other write to the
	// credential can come between the read and the write: of concurrent
	// calls whose fn refuses unless Counter is still the value its caller
	// read, exactly one succeeds. If fn returns an error, nothing is written
	// and UpdateCredential returns that error unchanged. fn may be called
	// more than once and must not block. fn must not change Kind, ID or
	// UserID: if it does, UpdateCredential returns ErrKeyChanged and writes
	// nothing. It returns the record as written, or ErrNotFound if there is
	// no such credential. Like UpdateUser's, fn may fill in the audit
	// entries; those whose Type is empty are left out.
	UpdateCredential(ctx context.Context, kind CredentialKind, id string, fn func(c *CredentialRecord) error, audit ...*AuditEntry) (*CredentialRecord, error)

	// DeleteCredential deletes the credential (kind, id) of the user userID.
	// It returns ErrNotFound, calling nothing and writing nothing, if there
	// is no such credential or it is another user's. When guard is not nil,
	// in the same atomic step as the delete it calls guard with a copy of
	// the user and copies of the user's other credentials (in ListCredentials
	// order); if guard returns an error, nothing is written and
	// DeleteCredential returns that error unchanged. No write to the user,
	// and no delete of another of the user's credentials, can come between
	// guard's read and the delete: of concurrent DeleteCredential calls whose guards refuse to
	// remove the user's last credential, all but one succeed.
	DeleteCredential(ctx context.Context, userID string, kind CredentialKind, id string, guard CredentialGuard, audit ...*AuditEntry) error

	// RemovePassword clears the user's PasswordHash and sets its UpdatedAt
	// to at, changing nothing else. It returns the user as written, or
	// ErrNotFound if there is no such user. When guard is not nil, in the
	// same atomic step as the write it calls guard with a copy of the user
	// and copies of all the user's credentials (in ListCredentials order);
	// if guard returns an error, nothing is written and RemovePassword
	// returns that error unchanged. No other write to the user, and no
	// delete of the user's credentials, can come between guard's read and
	// the write: of a
	// RemovePassword and a DeleteCredential of the user's last credential
	// running at once, each guarded against leaving the user no way to sign
	// in, exactly one succeeds.
	RemovePassword(ctx context.Context, userID string, at time.Time, guard CredentialGuard, audit ...*AuditEntry) (*UserRecord, error)

	// CreateUserWithCredential stores a new user and its first credential
	// (c.UserID is u.ID) in one atomic step, for a user who signs up with a
	// credential: both are written or neither. It checks the credential
	// first: it returns ErrConflict if (c.Kind, c.ID) is taken, and then
	// what CreateUser returns for u, writing nothing. Of any number of
	// concurrent calls with one (Kind, ID), exactly one succeeds, so a
	// credential never has two users and no user is left without it.
	CreateUserWithCredential(ctx context.Context, u *UserRecord, c *CredentialRecord, audit ...*AuditEntry) error
}

// compareCredentials orders credentials as ListCredentials returns them.
func compareCredentials(a, b *CredentialRecord) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

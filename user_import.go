package users

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"
)

// Moving users in without loss: the NewUser fields that carry what another
// system (or another store of this package) knew about a user, their checks,
// and the lookup by the other system's ID.

// maxExternalIDBytes bounds NewUser.ExternalID: room for any system's IDs
// (UUIDs, numbers, "auth0|…", Firebase UIDs, URLs of an issuer and subject).
const maxExternalIDBytes = 255

// checkExternalID checks an external ID: empty, or 1 to 255 bytes of
// printable ASCII without spaces. It is not normalised: another system's IDs
// may differ only in case.
func checkExternalID(s string) error {
	if len(s) > maxExternalIDBytes {
		return invalid("external_id", ValidationTooLong, "must be at most 255 bytes")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return invalid("external_id", ValidationMalformed, "must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkMovedIn checks the fields of nu that bring a user in from elsewhere
// (see NewUser), in their order, copies them into r and adds the refused
// ones to c.
func (m *Manager) checkMovedIn(nu NewUser, r *UserRecord, c *fieldErrors) {
	if nu.ID != "" {
		id, err := ulid.ParseStrict(nu.ID)
		if err != nil || id.String() != nu.ID {
			c.add(invalid("id", ValidationMalformed, "must be a ULID in its canonical form (26 characters, upper case)"))
		}
		r.ID = nu.ID
	}
	c.add(checkExternalID(nu.ExternalID))
	r.ExternalID = nu.ExternalID
	verifiedAtOK := nu.EmailVerifiedAt.IsZero() || nu.EmailVerified
	if !verifiedAtOK {
		c.add(invalid("email_verified_at", ValidationWrongState, "needs email_verified"))
	}
	now := m.now()
	for _, t := range []struct {
		field string
		in    time.Time
		out   *time.Time
		ok    bool // no error on the field yet
	}{
		{"email_verified_at", nu.EmailVerifiedAt, &r.EmailVerifiedAt, verifiedAtOK},
		{"created_at", nu.CreatedAt, &r.CreatedAt, true},
		{"updated_at", nu.UpdatedAt, &r.UpdatedAt, true},
		{"last_login_at", nu.LastLoginAt, &r.LastLoginAt, true},
		{"last_active_at", nu.LastActiveAt, &r.LastActiveAt, true},
	} {
		if t.ok && t.in.After(now) {
			c.add(invalid(t.field, ValidationOutOfRange, "must not be in the future"))
		}
		*t.out = t.in
	}
	r.EmailVerified = nu.EmailVerified
}

// stampNew gives a new record what it lacks before it is stored: an ID (of
// the time it was created, so that users moved in keep their order), and now
// as CreatedAt and UpdatedAt when they are zero.
func (m *Manager) stampNew(r *UserRecord, now time.Time) error {
	if r.ID == "" {
		id, err := m.newID(or(r.CreatedAt, now))
		if err != nil {
			return err
		}
		r.ID = id
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now
	}
	return nil
}

// GetByExternalID returns the user whose ExternalID (the ID another system
// gave them, NewUser.ExternalID) is exactly id, or ErrNotFound. A malformed or
// empty id is a *ValidationError on "external_id". It is safe for concurrent
// use.
func (m *Manager) GetByExternalID(ctx context.Context, id string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid("external_id", ValidationRequired, "is required")
	}
	if err := checkExternalID(id); err != nil {
		return nil, err
	}
	r, err := m.store.GetUserByExternalID(ctx, id)
	if err != nil {
		return nil, storeErr("get by external id", err)
	}
	return r.User.Clone(), nil
}

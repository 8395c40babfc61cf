package users

import (
	"context"
	"strconv"
)

// MaxBatch is the most IDs or emails GetMany and GetManyByEmail take in one call,
// and the most users Import writes in one store transaction.
const MaxBatch = 1000

// ImportResult is what Import did with one row.
type ImportResult struct {
	// User is the user created from the row, or nil if the row was refused.
	User *User
	// Err is nil for a created user, or why the row was refused: a
	// *ValidationError naming the field (matching ErrInvalidInput),
	// ErrDuplicateEmail or ErrDuplicateUsername (the key was taken already, or by
	// an earlier row of the same call).
	Err error
}

// Import creates many users, for moving users in from another system. Each row is
// validated and normalised exactly as Create does it, with a Password (hashed at
// the configured cost) or an imported bcrypt PasswordHash; the valid rows are then
// written MaxBatch at a time, each batch in one atomic store step (one fsync on
// bbolt).
//
// It returns one ImportResult per row, in order. A refused row never loses the
// others. The error result is for failures that are not a row's fault (the
// context, the store): rows of the batches written before it keep their results
// and are stored; the rows from the failing batch on have neither a User nor an
// Err and were not stored. Import is safe for concurrent use, also with Create:
// no two users ever get one email.
func (m *Manager) Import(ctx context.Context, rows []NewUser) ([]ImportResult, error) {
	out := make([]ImportResult, len(rows))
	for start := 0; start < len(rows); start += MaxBatch {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		end := min(start+MaxBatch, len(rows))
		var recs []*UserRecord
		var at []int // row index of each rec
		for i := start; i < end; i++ {
			r, err := m.newRecord(ctx, rows[i])
			if err != nil {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				out[i].Err = err
				continue
			}
			recs = append(recs, r)
			at = append(at, i)
		}
		if len(recs) == 0 {
			continue
		}
		now := m.now()
		for _, r := range recs {
			id, err := m.newID(now)
			if err != nil {
				return out, err
			}
			r.ID, r.CreatedAt, r.UpdatedAt = id, now, now
		}
		errs, err := m.store.CreateUsers(ctx, recs)
		if err != nil {
			return out, storeErr("import", err)
		}
		for j, r := range recs {
			if errs[j] != nil {
				out[at[j]].Err = storeErr("import", errs[j])
				continue
			}
			out[at[j]].User = r.User.Clone()
		}
	}
	return out, nil
}

// GetMany returns the users with these IDs, in one consistent store read, in the
// order given: the i'th entry is the user with ids[i], or nil if there is none. A
// missing user is not an error. It returns a *ValidationError on "ids" for more
// than MaxBatch IDs.
func (m *Manager) GetMany(ctx context.Context, ids []string) ([]*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ids) > MaxBatch {
		return nil, invalid("ids", "must be at most "+strconv.Itoa(MaxBatch))
	}
	rs, err := m.store.GetUsers(ctx, ids)
	if err != nil {
		return nil, storeErr("get many", err)
	}
	return publicUsers(rs), nil
}

// GetManyByEmail returns the users with these emails (normalised first), in one
// consistent store read, in the order given: the i'th entry is the user with
// emails[i], or nil if nobody has it. A malformed email names nobody and gives
// nil too. It returns a *ValidationError on "emails" for more than MaxBatch
// emails.
func (m *Manager) GetManyByEmail(ctx context.Context, emails []string) ([]*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(emails) > MaxBatch {
		return nil, invalid("emails", "must be at most "+strconv.Itoa(MaxBatch))
	}
	norm := make([]string, len(emails))
	for i, e := range emails {
		if n, err := NormalizeEmail(e); err == nil {
			norm[i] = n
		} // "" names nobody: a store never has an empty email
	}
	rs, err := m.store.GetUsersByEmail(ctx, norm)
	if err != nil {
		return nil, storeErr("get many by email", err)
	}
	return publicUsers(rs), nil
}

func publicUsers(rs []*UserRecord) []*User {
	out := make([]*User, len(rs))
	for i, r := range rs {
		if r != nil {
			out[i] = r.User.Clone()
		}
	}
	return out
}

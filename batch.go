package users

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// MaxBatch is the most IDs or emails GetMany and GetManyByEmail take in one call.
const MaxBatch = 1000

// ImportBatch is the most users Import writes in one store transaction. A large
// batch shares one fsync, and on bbolt each index page it changes, among many
// users: with random emails at a million users, most email-index pages a batch
// of 1,000 changes hold only one of its users, while a batch of 25,000 rewrites
// each index page it touches once for the whole batch (README, Benchmarks).
// Other writes to the store wait while a batch is written, which on bbolt is one
// write transaction. Each Import call writes its rows in batches of at most
// ImportBatch, so a caller who wants shorter pauses passes fewer rows.
const ImportBatch = 25_000

// ImportResult is what Import did with one row.
type ImportResult struct {
	// User is the user created from the row, or nil if the row was refused.
	User *User
	// Err is nil for a created user, or why the row was refused: a
	// *ValidationError naming the field, or ValidationErrors naming each
	// refused field as Create does (both match ErrInvalidInput),
	// ErrDuplicateEmail, ErrDuplicateUsername or ErrDuplicateExternalID (the key
	// was taken already, or by an earlier row of the same call), or ErrConflict
	// (the row's ID is taken).
	Err error
}

// Import creates many users, for moving users in from another system, with a
// user.created audit entry for each user it stores. Each row is
// validated and normalised exactly as Create does it, with a Password (hashed at
// the configured cost) or an imported PasswordHash (see NewUser); the valid rows are then
// written ImportBatch at a time, each batch in one atomic store step (one fsync
// on bbolt). The passwords of a batch are hashed concurrently, at most
// Options.MaxConcurrentHashes at once (shared with every other caller that
// hashes), so importing plain passwords takes about rows × hash time ÷
// MaxConcurrentHashes; imported hashes cost no bcrypt work at all.
//
// It returns one ImportResult per row, in order. A refused row never loses the
// others. The error result is for failures that are not a row's fault (the
// context, the store): rows of the batches written before it keep their results
// and are stored; the rows from the failing batch on have neither a User nor an
// Err and were not stored. Import is safe for concurrent use, also with Create:
// no two users ever get one email.
func (m *Manager) Import(ctx context.Context, rows []NewUser) ([]ImportResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ImportResult, len(rows))
	for start := 0; start < len(rows); start += ImportBatch {
		end := min(start+ImportBatch, len(rows))
		if err := m.importBatch(ctx, rows[start:end], out[start:end]); err != nil {
			clear(out[start:end])
			return out, err
		}
	}
	return out, nil
}

// importBatch validates rows, hashes their passwords and stores them in one
// CreateUsers call, filling out (one result per row). An error is not a row's
// fault, and leaves out to the caller.
func (m *Manager) importBatch(ctx context.Context, rows []NewUser, out []ImportResult) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	recs := make([]*UserRecord, len(rows))
	var wg sync.WaitGroup
	workers := make(chan struct{}, cap(m.hashSlots))
	for i, nu := range rows {
		if nu.Password == "" { // an imported hash, or a row to refuse: no bcrypt
			recs[i], out[i].Err = m.newRecord(ctx, nu)
			continue
		}
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-workers }()
			recs[i], out[i].Err = m.newRecord(ctx, nu)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err // some rows may have failed only because of it
	}
	var batch []*UserRecord
	var at []int // row index of each record in batch
	now := m.now()
	for i, r := range recs {
		if r == nil {
			continue
		}
		if err := m.stampNew(r, now); err != nil {
			return err
		}
		batch = append(batch, r)
		at = append(at, i)
	}
	if len(batch) == 0 {
		return nil
	}
	entries := make([]*AuditEntry, len(batch))
	ids := make([]string, len(batch))
	for j, r := range batch {
		e, err := m.auditEntry(ctx, EventUserCreated, r.ID)
		if err != nil {
			return err
		}
		entries[j], ids[j] = e, r.ID
	}
	var errs []error
	err := m.writeMany(ctx, ids, entries, func() ([]*AuditEntry, error) {
		var err error
		if errs, err = m.store.CreateUsers(ctx, batch, entries...); err != nil || len(errs) != len(batch) {
			return nil, err
		}
		var written []*AuditEntry
		for j, e := range entries {
			if errs[j] == nil {
				written = append(written, e)
			}
		}
		return written, nil
	})
	if err != nil {
		return storeErr("import", err)
	}
	if len(errs) != len(batch) {
		return fmt.Errorf("users: import: store returned %d results for %d users", len(errs), len(batch))
	}
	for j, r := range batch {
		if errs[j] != nil {
			out[at[j]].Err = storeErr("import", errs[j])
			continue
		}
		out[at[j]].User = r.User.Clone()
	}
	return nil
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
		return nil, invalid("ids", ValidationTooMany, "must be at most "+strconv.Itoa(MaxBatch))
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
		return nil, invalid("emails", ValidationTooMany, "must be at most "+strconv.Itoa(MaxBatch))
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

// publicUsers returns the Users of records a store returned, which are copies
// of the caller's own: they are handed out without another copy.
func publicUsers(rs []*UserRecord) []*User {
	out := make([]*User, len(rs))
	for i, r := range rs {
		if r != nil {
			out[i] = &r.User
		}
	}
	return out
}

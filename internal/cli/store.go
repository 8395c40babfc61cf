package cli

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/userkit/users"
)

// Backend is a store the command runs on, with what it offers beyond
// users.Store. Check, Backup and Stats are nil where the store has no such
// thing; the commands that need them then say so.
type Backend struct {
	Store users.Store
	// Name is the store as messages name it: the file, or the database.
	Name string
	// File says Name is a file's path.
	File bool
	// Close releases the store.
	Close func() error
	// Check verifies the store's records and indexes against each other,
	// returning an error matching users.ErrCorrupt when they disagree.
	Check func(ctx context.Context) error
	// Backup writes a consistent copy of the store to w and returns its size.
	Backup func(ctx context.Context, w io.Writer) (int64, error)
	// Stats counts what stats reports besides the users.
	Stats func(ctx context.Context, now time.Time) (Stats, error)
}

// Stats is what Backend.Stats counts.
type Stats struct {
	Size            int64 // bytes the store takes on disk; 0 if unknown
	Sessions        int
	ExpiredSessions int // sessions expired and not purged yet
	Tokens          int
	ExpiredTokens   int
	LoginThrottles  int
	AuditEntries    int
	Credentials     int
}

// OpenDSN opens the store a -dsn names, for a build of the command with a
// database driver (postgres/cmd/users). Errors are reported as they are, with
// exit code 1.
type OpenDSN func(ctx context.Context, dsn string) (*Backend, error)

// boltBackend is the Backend of the bbolt file path, open as s.
func boltBackend(path string, s *users.BoltStore) *Backend {
	return &Backend{
		Store:  s,
		Name:   path,
		File:   true,
		Close:  s.Close,
		Check:  s.Check,
		Backup: s.Backup,
		Stats: func(ctx context.Context, now time.Time) (Stats, error) {
			st, err := s.Stats(ctx, now)
			if err != nil {
				return Stats{}, err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return Stats{}, err
			}
			return Stats{
				Size: fi.Size(), Sessions: st.Sessions, ExpiredSessions: st.ExpiredSessions,
				Tokens: st.Tokens, ExpiredTokens: st.ExpiredTokens, LoginThrottles: st.LoginThrottles,
				AuditEntries: st.AuditEntries, Credentials: st.Credentials,
			}, nil
		},
	}
}

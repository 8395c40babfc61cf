package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent snapshot of the whole bbolt file to w and returns
// the number of bytes written. The snapshot is itself a bbolt file: save it and
// OpenBoltStore opens it as it is (restore by putting it where the live file
// was, with the application stopped). It holds every write that was committed
// (acknowledged) before Backup was called, none of those that commit while it
// runs, and the program's own buckets if it shares the file (NewBoltStore).
//
// Backup reads the file inside one bbolt read transaction (Tx.WriteTo), so the
// application keeps serving while it runs: reads and writes go on. Two costs
// of a long backup: pages freed meanwhile are reused only after it ends, so the
// file may grow, and a write that must grow the memory map waits until it ends
// (BoltOptions.InitialMmapSize avoids that wait).
//
// Because the process that opened the file holds its lock, this is how a
// running application backs up its store: serve Backup to an administrator (see
// the BoltStore example with an HTTP handler). A write to w that fails ends the
// backup with that error; so does ctx being done, checked before each write to
// w. Backup is safe for concurrent use.
func (s *BoltStore) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := s.start(ctx); err != nil {
		return 0, err
	}
	var n int64
	cw := &ctxWriter{ctx: ctx, w: w}
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(cw)
		return err
	})
	if cw.err != nil {
		err = cw.err // bbolt keeps only the text of w's error
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return n, ctxErr
	}
	if err != nil {
		return n, fmt.Errorf("users: bolt store: backup: %w", err)
	}
	return n, nil
}

// ctxWriter fails every write once ctx is done, so that a cancelled backup
// stops instead of copying the rest of the file, and keeps the first error.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.err = c.ctx.Err(); c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}

// BoltStats is what BoltStore.Stats counts, all read in one transaction.
type BoltStats struct {
	Users int // user records

	// Sessions and Tokens count the stored sessions and one-time tokens,
	// including those that expired and have not been purged yet (DeleteExpired);
	// ExpiredSessions and ExpiredTokens count those.
	Sessions, ExpiredSessions int
	Tokens, ExpiredTokens     int

	// LoginThrottles counts login-throttle entries (identifiers with recent
	// failed logins).
	LoginThrottles int

	// AuditEntries counts the entries of the audit log (see
	// Options.AuditRetention for how long they are kept).
	AuditEntries int

	// Credentials counts the stored credentials (CredentialRecord) of every
	// kind.
	Credentials int

	// FileSize is the size in bytes of the database as the transaction saw it,
	// which is also the size Backup writes.
	FileSize int64
}

// Stats counts the records of the store: users, sessions, one-time tokens,
// login-throttle entries, audit entries and credentials, and which sessions and tokens expired at or before now.
// It reads in one read transaction, so writes go on meanwhile; its cost grows
// with the size of the file. It returns an error matching ErrCorrupt if the
// store's buckets are missing. Stats is safe for concurrent use.
func (s *BoltStore) Stats(ctx context.Context, now time.Time) (BoltStats, error) {
	var st BoltStats
	bound := timeKey(now)
	expired := func(idx *bbolt.Bucket) int {
		n := 0
		c := idx.Cursor()
		for k, _ := c.First(); len(k) >= timeKeyLen && bytes.Compare(k[:timeKeyLen], bound) <= 0; k, _ = c.Next() {
			n++
		}
		return n
	}
	err := s.view(ctx, "stats", func(b *boltTx) error {
		st.Users = b.users.Stats().KeyN
		st.Sessions = b.sessions.Stats().KeyN
		st.Tokens = b.tokens.Stats().KeyN
		st.LoginThrottles = b.logins.Stats().KeyN
		st.AuditEntries = b.audit.Stats().KeyN
		st.Credentials = b.cred.Stats().KeyN
		st.ExpiredSessions = expired(b.sessExp)
		st.ExpiredTokens = expired(b.tokExp)
		st.FileSize = b.users.Tx().Size()
		return nil
	})
	return st, err
}

package users

import (
	"context"
	"errors"
	"fmt"
	"io"

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

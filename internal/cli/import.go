package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/userkit/users"
)

// batchSize is how many rows go to Manager.Import at once: one store
// transaction (one fsync) per batch.
const batchSize = users.ImportBatch

// importRow is one row of input, in the names of the JSON of users.User.
type importRow struct {
	Email        string            `json:"email"`
	Username     string            `json:"username"`
	Password     string            `json:"password"`
	PasswordHash string            `json:"password_hash"`
	FirstName    string            `json:"first_name"`
	LastName     string            `json:"last_name"`
	Role         users.Role        `json:"role"`
	Status       users.Status      `json:"status"`
	AvatarURL    string            `json:"avatar_url"`
	AccountID    string            `json:"account_id"`
	Preferences  map[string]string `json:"preferences"`

	// What export writes besides, imported as it is (users.NewUser): the ID
	// (a user of another store of this library keeps it), the other system's
	// ID, email verification and the user's history.
	ID              string    `json:"id"`
	ExternalID      string    `json:"external_id"`
	EmailVerified   bool      `json:"email_verified"`
	EmailVerifiedAt time.Time `json:"email_verified_at"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	LastLoginAt     time.Time `json:"last_login_at"`
	LastActiveAt    time.Time `json:"last_active_at"`
}

// newUser is the row as Import takes it. A row with neither a password nor a
// hash is a user without a password (NoPassword), who signs in by magic link,
// by a password reset or with a linked provider; an invited one accepts an
// invitation (Manager.Reinvite sends a new one).
func (r *importRow) newUser() users.NewUser {
	return users.NewUser{
		Email: r.Email, Username: r.Username, Password: r.Password, PasswordHash: r.PasswordHash,
		FirstName: r.FirstName, LastName: r.LastName, Role: r.Role, Status: r.Status,
		AvatarURL: r.AvatarURL, AccountID: r.AccountID, Preferences: r.Preferences,
		NoPassword: r.Password == "" && r.PasswordHash == "" && r.Status != users.StatusInvited,
		ID:         r.ID, ExternalID: r.ExternalID,
		EmailVerified: r.EmailVerified, EmailVerifiedAt: r.EmailVerifiedAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastLoginAt: r.LastLoginAt, LastActiveAt: r.LastActiveAt,
	}
}

// csvColumns are the columns a CSV header may name, and how each sets its
// field; an error refuses the row.
var csvColumns = map[string]func(r *importRow, v string) error{
	"email":             text(func(r *importRow) *string { return &r.Email }),
	"username":          text(func(r *importRow) *string { return &r.Username }),
	"password":          text(func(r *importRow) *string { return &r.Password }),
	"password_hash":     text(func(r *importRow) *string { return &r.PasswordHash }),
	"first_name":        text(func(r *importRow) *string { return &r.FirstName }),
	"last_name":         text(func(r *importRow) *string { return &r.LastName }),
	"role":              func(r *importRow, v string) error { r.Role = users.Role(v); return nil },
	"status":            func(r *importRow, v string) error { r.Status = users.Status(v); return nil },
	"avatar_url":        text(func(r *importRow) *string { return &r.AvatarURL }),
	"account_id":        text(func(r *importRow) *string { return &r.AccountID }),
	"id":                text(func(r *importRow) *string { return &r.ID }),
	"external_id":       text(func(r *importRow) *string { return &r.ExternalID }),
	"email_verified":    verified,
	"email_verified_at": timeColumn(func(r *importRow) *time.Time { return &r.EmailVerifiedAt }),
	"created_at":        timeColumn(func(r *importRow) *time.Time { return &r.CreatedAt }),
	"updated_at":        timeColumn(func(r *importRow) *time.Time { return &r.UpdatedAt }),
	"last_login_at":     timeColumn(func(r *importRow) *time.Time { return &r.LastLoginAt }),
	"last_active_at":    timeColumn(func(r *importRow) *time.Time { return &r.LastActiveAt }),
}

// csvColumnNames is the list of csvColumns for messages.
const csvColumnNames = "email, username, password, password_hash, first_name, last_name, role, status, avatar_url, account_id, id, external_id, email_verified, email_verified_at, created_at, updated_at, last_login_at, last_active_at"

// text is a CSV column of text.
func text(field func(r *importRow) *string) func(*importRow, string) error {
	return func(r *importRow, v string) error { *field(r) = v; return nil }
}

// timeColumn is a CSV column of a time: RFC 3339, or empty for none.
func timeColumn(field func(r *importRow) *time.Time) func(*importRow, string) error {
	return func(r *importRow, v string) error {
		if v == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("not an RFC 3339 time: %q", v)
		}
		*field(r) = t
		return nil
	}
}

// verified is the email_verified column: true or false (empty is false).
func verified(r *importRow, v string) error {
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		r.EmailVerified = true
	case "false", "0", "no", "":
		r.EmailVerified = false
	default:
		return fmt.Errorf("email_verified %q: want true or false", v)
	}
	return nil
}

// parsed is one row read from the input: a user to import, or why the row
// could not be read.
type parsed struct {
	line   int
	offset int64 // about how far into the input the row ends (for the progress bar)
	row    importRow
	err    error
}

var importCmd = &command{
	name: "import", args: "[FILE]", summary: "import users from JSON lines or CSV",
	help: `Import creates a user for each row of FILE (standard input if FILE is - or
missing): JSON lines (one object per line) or CSV with a header row. The fields
and CSV columns are email (required), username, password or password_hash,
first_name, last_name, role, status (active, inactive, suspended or invited),
avatar_url, account_id, external_id (the user's ID in the old system: unique,
found with "users get ext:ID"), email_verified (true or false), the times
email_verified_at, created_at, updated_at, last_login_at and last_active_at
(RFC 3339), id (a ULID, from another store of this library: the user keeps
it), and in JSON preferences (an object of strings). A row with neither
password nor password_hash imports a user without a password, who signs in
by magic link, password reset or a linked provider; an invited row gets its
invitation from the application (Manager.Reinvite). The format is -format, or else the file's
extension (.csv; .jsonl, .ndjson, .json), or else the first byte ('{' is JSON).

-format kratos, supabase or django reads another system's export instead: Ory
Kratos's identities (GET /admin/identities?include_credential=password, a JSON
array or lines), Supabase's auth.users rows (CSV with a header, a JSON array
or lines) or Django's "manage.py dumpdata auth.user". The README has the
mapping of their fields. A username this library would refuse is left out
(the user signs in with the email), and counted in a note. In a JSON array,
a refused record is named by its position (FILE:3 is the third record).

password_hash takes a hash from another system (bcrypt, Argon2, scrypt,
PBKDF2, Django, Keycloak, ASP.NET Identity, SHA-crypt; see the README): the
user logs in with their old password and the hash is upgraded then. It also
takes this library's own hashes, as export -with-hashes writes them, so users
keep their passwords when they move to another file or store. Rows with a
plain password are hashed here at USERS_BCRYPT_COST (slow: about 250 ms each
at the default cost 12). export -with-hashes writes every field, so
"users export -with-hashes | users import" into an empty store gives the same
users back, IDs included.

A row with a role other than user or viewer (admin, or one of $USERS_ROLES)
is refused unless -allow-roles names that role: an import file cannot make
admins without a word. The summary counts the users imported with each role.

Every row passes the library's validation or is refused: one line per refused
row goes to standard error, with its line number and reason, and the rest
goes on. A row whose email someone already has is counted as "exists" and
left alone, so an import can be run again after a failure. Progress counts
the rows stored: on a terminal a bar, otherwise a line on standard error
every $USERS_PROGRESS_INTERVAL (default 5s). A summary ends the output: rows
imported, existing and refused, the imported users by role, and the refused
rows by reason. Exit code 6 when rows were refused.`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		format := fs.String("format", "", "`csv`, jsonl, or another system's export: kratos, supabase, django (default: csv or jsonl, from the file name or its first byte)")
		verbose := fs.Bool("v", false, "also print a line for each row that exists")
		allow := fs.String("allow-roles", "", "import rows with these `roles` too (comma-separated, e.g. admin,support); user and viewer need no flag")
		return func(ctx context.Context, args []string) error {
			if len(args) > 1 {
				return usageError("want at most one FILE, got %d arguments", len(args))
			}
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			switch *format {
			case "", "csv", "jsonl", "kratos", "supabase", "django":
			default:
				return usageError("-format %q: want csv, jsonl, kratos, supabase or django", *format)
			}
			// The library does not rank roles; of its default roles, only admin
			// grants more than user does.
			allowed := map[users.Role]bool{"": true, users.RoleUser: true, users.RoleViewer: true}
			for r := range strings.SplitSeq(*allow, ",") {
				if r = strings.TrimSpace(r); r != "" {
					allowed[users.Role(r)] = true
				}
			}
			x.progressEvery = 5 * time.Second
			if v := x.getenv("USERS_PROGRESS_INTERVAL"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return usageError("USERS_PROGRESS_INTERVAL=%q: want a duration such as 5s", v)
				}
				x.progressEvery = d
			}
			in, size, closeIn, err := x.openInput(name)
			if err != nil {
				return err
			}
			defer closeIn()
			return x.withManager(true, func(_ *Backend, m *users.Manager) error {
				return x.importRows(ctx, m, in, name, size, *format, *verbose, allowed)
			})
		}
	},
}

// openInput opens FILE, or standard input for "-"; size is the file's size when
// it is a regular file, else 0.
func (x *cli) openInput(name string) (r io.Reader, size int64, closeFn func(), err error) {
	if name == "-" {
		return x.stdin, 0, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}

type importCounts struct {
	rows, imported, exists, refused int
	roles                           map[users.Role]int // of the imported users
	reasons                         map[string]int     // of the refused rows
}

// stored is how many rows have been decided: imported, found existing or
// refused.
func (n importCounts) stored() int { return n.imported + n.exists + n.refused }

// refusalReason is the kind of a refusal, for the summary's counts: the
// field of a *ValidationError, or what else went wrong.
func refusalReason(err error) string {
	var ve *users.ValidationError
	switch {
	case errors.As(err, &ve):
		return "invalid " + ve.Field
	case errors.Is(err, users.ErrDuplicateUsername):
		return "username taken"
	case errors.Is(err, users.ErrDuplicateExternalID):
		return "external ID taken"
	case errors.Is(err, users.ErrConflict):
		return "ID taken"
	case errors.Is(err, errRoleNotAllowed):
		return "role not allowed"
	}
	return "unreadable row"
}

// errRoleNotAllowed refuses a row whose role -allow-roles does not name.
var errRoleNotAllowed = errors.New("import it with -allow-roles")

// reasonsLine is the summary's count of refused rows by reason, the most
// frequent first: "refused: invalid email 2, unreadable row 1".
func (n importCounts) reasonsLine() string {
	keys := slices.Collect(maps.Keys(n.reasons))
	slices.SortFunc(keys, func(a, b string) int {
		if c := n.reasons[b] - n.reasons[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, n.reasons[k])
	}
	return "refused: " + strings.Join(parts, ", ")
}

// summary is the lines that end an import: counts, roles, reasons.
func (n importCounts) summary(prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d rows: %d imported, %d exists, %d refused\n", prefix, n.rows, n.imported, n.exists, n.refused)
	if n.imported > 0 {
		b.WriteString(n.rolesLine() + "\n")
	}
	if n.refused > 0 {
		b.WriteString(n.reasonsLine() + "\n")
	}
	return b.String()
}

// rolesLine is the summary's count of imported users by role, in the order
// of the roles' names: "roles imported: admin 2, user 40".
func (n importCounts) rolesLine() string {
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(n.roles)) {
		parts = append(parts, fmt.Sprintf("%s %d", r, n.roles[r]))
	}
	return "roles imported: " + strings.Join(parts, ", ")
}

// importRows imports the rows of in; allowed holds the roles a row may have.
func (x *cli) importRows(ctx context.Context, m *users.Manager, in io.Reader, name string, size int64, format string, verbose bool, allowed map[users.Role]bool) error {
	ctx, cancel := context.WithCancel(ctx)
	cr := &countingReader{r: in}
	br := bufio.NewReaderSize(cr, 64<<10)
	if format == "" {
		format = guessFormat(name, br)
	}
	rows := make(chan parsed, batchSize)
	readErr := make(chan error, 1)
	dropped := 0 // usernames left out of a peer's rows; read after readErr
	go func() {
		defer close(rows)
		if peerFormats[format] != nil {
			readErr <- readPeer(ctx, br, rows, cr.n.Load, format, &dropped)
		} else if format == "csv" {
			readErr <- readCSV(ctx, br, rows, cr.n.Load)
		} else {
			readErr <- readJSONLines(ctx, br, rows, cr.n.Load)
		}
	}()
	defer func() {
		cancel()         // stops the reader if we stop early,
		for range rows { // and this lets it finish
		}
	}()

	n := importCounts{roles: map[users.Role]int{}, reasons: map[string]int{}}
	bar := x.newProgress(size)
	defer bar.stop()
	report := func(line int, what string) {
		bar.println(fmt.Sprintf("%s:%d: %s", name, line, what))
	}
	// pending holds the rows read since the last batch, unreadable ones
	// included, so that refusals are reported in the order of the input.
	var pending []parsed
	var batch []users.NewUser
	flush := func() error {
		batch = batch[:0]
		for _, p := range pending {
			if p.err == nil {
				batch = append(batch, p.row.newUser())
			}
		}
		var res []users.ImportResult
		var err error
		if len(batch) > 0 {
			res, err = m.Import(ctx, batch)
		}
		i := 0
		for _, p := range pending {
			if p.err != nil {
				n.refused++
				n.reasons[refusalReason(p.err)]++
				report(p.line, "refused: "+p.err.Error())
				bar.set(n, p.offset)
				continue
			}
			if i == len(res) || res[i].User == nil && res[i].Err == nil {
				break // Import stopped with err before this row
			}
			r := res[i]
			i++
			switch {
			case r.Err == nil:
				n.imported++
				n.roles[r.User.Role]++
			case errors.Is(r.Err, users.ErrDuplicateEmail):
				n.exists++
				if verbose {
					report(p.line, "exists: "+p.row.Email)
				}
			default:
				n.refused++
				n.reasons[refusalReason(r.Err)]++
				report(p.line, "refused: "+strings.TrimPrefix(r.Err.Error(), "users: "))
			}
			bar.set(n, p.offset)
		}
		pending = pending[:0]
		return err
	}
	for p := range rows {
		n.rows++
		if p.err == nil && !allowed[p.row.Role] {
			p.err = fmt.Errorf("role %q: %w %s", p.row.Role, errRoleNotAllowed, p.row.Role)
		}
		if pending = append(pending, p); len(pending) == batchSize {
			if err := flush(); err != nil {
				return x.importFailed(n, err)
			}
		}
	}
	if err := flush(); err != nil {
		return x.importFailed(n, err)
	}
	if err := <-readErr; err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return x.importFailed(n, err)
	}
	if dropped > 0 {
		bar.println(fmt.Sprintf("note: %d usernames did not fit this library's rules (3-32 of a-z 0-9 _ . -) and were left out; those users sign in with their email", dropped))
	}
	bar.stop()
	fmt.Fprint(x.stdout, n.summary(""))
	if n.refused > 0 {
		return &exitError{exitRefused, fmt.Errorf("%d of %d rows refused (listed above); fix them and import again: the rows already imported count as \"exists\"", n.refused, n.rows)}
	}
	return nil
}

func (x *cli) importFailed(n importCounts, err error) error {
	fmt.Fprint(x.stdout, n.summary("stopped after "))
	return fmt.Errorf("%w (importing again goes on where this stopped: imported rows count as \"exists\")", err)
}

// guessFormat decides between csv and jsonl from the file name, or else from
// the first byte that is not white space.
func guessFormat(name string, br *bufio.Reader) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson", ".json":
		return "jsonl"
	}
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || len(b) == 0 {
			return "jsonl"
		}
		switch c := b[len(b)-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return "jsonl"
		default:
			return "csv"
		}
	}
}

// readJSONLines sends the rows of r to out; pos tells how far the input has
// been read.
func readJSONLines(ctx context.Context, r io.Reader, out chan<- parsed, pos func() int64) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		p := parsed{line: line, offset: pos()}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p.row); err != nil {
			p.err = fmt.Errorf("not a JSON object of user fields: %v", err)
		} else if dec.More() {
			p.err = errors.New("more than one JSON value on the line")
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return sc.Err()
}

// readCSV sends the rows of r to out; pos tells how far the input has been
// read.
func readCSV(ctx context.Context, r io.Reader, out chan<- parsed, pos func() int64) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, to report the row and go on
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the CSV header: %w", err)
	}
	set := make([]func(*importRow, string) error, len(header))
	hasEmail := false
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if set[i] = csvColumns[h]; set[i] == nil {
			return usageError("CSV column %q: want %s", h, csvColumnNames)
		}
		hasEmail = hasEmail || h == "email"
	}
	if !hasEmail {
		return usageError("the CSV header has no email column")
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		p := parsed{line: line, offset: pos()}
		switch {
		case err != nil:
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			p.line, p.err = pe.Line, fmt.Errorf("not CSV: %v", pe.Err)
		case len(rec) != len(header):
			p.err = fmt.Errorf("%d fields, the header has %d", len(rec), len(header))
		default:
			for i, v := range rec {
				if err := set[i](&p.row, v); err != nil {
					p.err = err
					break
				}
			}
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress reports how many rows have been stored, on standard error: a bar
// redrawn as batches are stored when it is a terminal, else a line every
// x.progressEvery (default 5 seconds) while the import runs, so that a log
// shows it is alive. It counts rows decided by the store, not bytes read.
type progress struct {
	x    *cli
	size int64

	mu     sync.Mutex
	n      importCounts
	offset int64
	drawn  bool
	last   time.Time
	done   chan struct{}
	once   sync.Once
}

func (x *cli) newProgress(size int64) *progress {
	p := &progress{x: x, size: size, done: make(chan struct{})}
	if !x.stderrTTY && x.progressEvery > 0 {
		go func() {
			t := time.NewTicker(x.progressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					p.mu.Lock()
					fmt.Fprintf(x.stderr, "users import: %d rows stored so far: %d imported, %d exists, %d refused\n", p.n.stored(), p.n.imported, p.n.exists, p.n.refused)
					p.mu.Unlock()
				case <-p.done:
					return
				}
			}
		}()
	}
	return p
}

// set records the counts after a row is decided; offset is where it ends in
// the input. On a terminal the bar is redrawn at most ten times a second.
func (p *progress) set(n importCounts, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.offset = n, offset
	if p.x.stderrTTY && time.Since(p.last) >= 100*time.Millisecond {
		p.draw()
	}
}

func (p *progress) draw() {
	p.last, p.drawn = time.Now(), true
	stored := p.n.stored()
	if p.size <= 0 {
		fmt.Fprintf(p.x.stderr, "\r\033[K%d rows stored", stored)
		return
	}
	frac := min(float64(p.offset)/float64(p.size), 1)
	const width = 30
	full := int(frac * width)
	fmt.Fprintf(p.x.stderr, "\r\033[K[%s%s] %3.0f%% %d rows stored", strings.Repeat("=", full), strings.Repeat(" ", width-full), frac*100, stored)
}

// clear erases the bar; p.mu is held.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.x.stderr, "\r\033[K")
		p.drawn = false
	}
}

// println writes a line to standard error, erasing the bar first.
func (p *progress) println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.x.stderr, line)
}

// stop ends the periodic lines and erases the bar.
func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

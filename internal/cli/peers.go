package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/userkit/users"
)

// Export formats of other systems that import reads with -format. Each maps
// one record of the peer's export to an importRow; the mapping is in the
// README ("Moving in from another system"). The peer's ID becomes the
// external ID, and what it knows of the email's verification and the user's
// history is kept.
var peerFormats = map[string]func(raw json.RawMessage) (importRow, error){
	"kratos":   kratosRow,
	"supabase": supabaseRow,
	"django":   djangoRow,
}

// kratosIdentity is an identity as Ory Kratos's admin API lists it
// (GET /admin/identities?include_credential=password, or
// `kratos list identities --format json`), with the default schema's traits.
type kratosIdentity struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Traits struct {
		Email    string          `json:"email"`
		Username string          `json:"username"`
		Name     json.RawMessage `json:"name"` // {"first","last"} or a string
	} `json:"traits"`
	Credentials struct {
		Password *struct {
			Config struct {
				HashedPassword string `json:"hashed_password"`
			} `json:"config"`
		} `json:"password"`
	} `json:"credentials"`
	VerifiableAddresses []struct {
		Value      string `json:"value"`
		Via        string `json:"via"`
		Verified   bool   `json:"verified"`
		VerifiedAt string `json:"verified_at"`
	} `json:"verifiable_addresses"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func kratosRow(raw json.RawMessage) (importRow, error) {
	var k kratosIdentity
	if err := json.Unmarshal(raw, &k); err != nil {
		return importRow{}, fmt.Errorf("not a Kratos identity: %v", err)
	}
	r := importRow{Email: k.Traits.Email, Username: k.Traits.Username, ExternalID: k.ID}
	for _, a := range k.VerifiableAddresses {
		if a.Via == "email" && a.Verified && strings.EqualFold(a.Value, k.Traits.Email) {
			r.EmailVerified = true
			if err := peerTime(&r.EmailVerifiedAt, "verified_at", a.VerifiedAt); err != nil {
				return importRow{}, err
			}
		}
	}
	if err := peerTimes(&r, k.CreatedAt, k.UpdatedAt, ""); err != nil {
		return importRow{}, err
	}
	var name struct{ First, Last string }
	if json.Unmarshal(k.Traits.Name, &name) == nil {
		r.FirstName, r.LastName = name.First, name.Last
	} else {
		var full string
		if json.Unmarshal(k.Traits.Name, &full) == nil {
			r.FirstName, r.LastName, _ = strings.Cut(full, " ")
		}
	}
	if k.Credentials.Password != nil {
		r.PasswordHash = k.Credentials.Password.Config.HashedPassword
	}
	if k.State == "inactive" {
		r.Status = users.StatusInactive
	}
	return r, nil
}

// supabaseUser is a row of Supabase's auth.users, as JSON (psql's row_to_json,
// the dashboard's export) or as CSV with the column names as header.
type supabaseUser struct {
	ID                string          `json:"id"`
	Email             string          `json:"email"`
	EmailConfirmedAt  *string         `json:"email_confirmed_at"`
	CreatedAt         *string         `json:"created_at"`
	UpdatedAt         *string         `json:"updated_at"`
	LastSignInAt      *string         `json:"last_sign_in_at"`
	EncryptedPassword string          `json:"encrypted_password"`
	RawUserMetaData   json.RawMessage `json:"raw_user_meta_data"`
	BannedUntil       *string         `json:"banned_until"`
	DeletedAt         *string         `json:"deleted_at"`
	IsAnonymous       bool            `json:"is_anonymous"`
}

func supabaseRow(raw json.RawMessage) (importRow, error) {
	var s supabaseUser
	if err := json.Unmarshal(raw, &s); err != nil {
		return importRow{}, fmt.Errorf("not a Supabase auth.users row: %v", err)
	}
	switch {
	case s.DeletedAt != nil && *s.DeletedAt != "":
		return importRow{}, errors.New("deleted in Supabase (deleted_at is set)")
	case s.IsAnonymous:
		return importRow{}, errors.New("an anonymous Supabase user (no email)")
	}
	r := importRow{Email: s.Email, PasswordHash: s.EncryptedPassword, ExternalID: s.ID}
	if s.EmailConfirmedAt != nil && *s.EmailConfirmedAt != "" {
		r.EmailVerified = true
		if err := peerTime(&r.EmailVerifiedAt, "email_confirmed_at", *s.EmailConfirmedAt); err != nil {
			return importRow{}, err
		}
	}
	if err := peerTimes(&r, deref(s.CreatedAt), deref(s.UpdatedAt), deref(s.LastSignInAt)); err != nil {
		return importRow{}, err
	}
	meta := s.RawUserMetaData
	var text string
	if json.Unmarshal(meta, &text) == nil {
		meta = json.RawMessage(text) // CSV and some exports give the JSON as a string
	}
	var m map[string]any
	if json.Unmarshal(meta, &m) == nil {
		first, _ := m["first_name"].(string)
		last, _ := m["last_name"].(string)
		if full, ok := m["full_name"].(string); ok && first == "" && last == "" {
			first, last, _ = strings.Cut(full, " ")
		}
		r.FirstName, r.LastName = first, last
	}
	if s.BannedUntil != nil && *s.BannedUntil != "" {
		r.Status = users.StatusSuspended
	}
	return r, nil
}

// djangoUser is a record of `manage.py dumpdata auth.user`.
type djangoUser struct {
	Model  string          `json:"model"`
	PK     json.RawMessage `json:"pk"`
	Fields struct {
		DateJoined  string  `json:"date_joined"`
		LastLogin   *string `json:"last_login"`
		Password    string  `json:"password"`
		IsSuperuser bool    `json:"is_superuser"`
		Username    string  `json:"username"`
		FirstName   string  `json:"first_name"`
		LastName    string  `json:"last_name"`
		Email       string  `json:"email"`
		IsActive    *bool   `json:"is_active"`
	} `json:"fields"`
}

func djangoRow(raw json.RawMessage) (importRow, error) {
	var d djangoUser
	if err := json.Unmarshal(raw, &d); err != nil || d.Model != "auth.user" {
		return importRow{}, fmt.Errorf("not a Django auth.user record (dumpdata auth.user)")
	}
	f := d.Fields
	r := importRow{Email: f.Email, Username: f.Username, FirstName: f.FirstName, LastName: f.LastName}
	var pk string
	if json.Unmarshal(d.PK, &pk) == nil {
		r.ExternalID = pk // a string key
	} else if len(d.PK) > 0 && string(d.PK) != "null" {
		r.ExternalID = string(d.PK) // a number, as Django wrote it
	}
	if err := peerTimes(&r, f.DateJoined, "", deref(f.LastLogin)); err != nil {
		return importRow{}, err
	}
	if !strings.HasPrefix(f.Password, "!") { // "!…" is Django's unusable password
		r.PasswordHash = f.Password
	}
	if f.IsSuperuser {
		r.Role = users.RoleAdmin
	}
	if f.IsActive != nil && !*f.IsActive {
		r.Status = users.StatusInactive
	}
	return r, nil
}

// peerTimes sets the times of r from a peer's: each empty, or a time as
// peerTime reads it.
func peerTimes(r *importRow, created, updated, lastLogin string) error {
	for _, t := range []struct {
		to         *time.Time
		name, text string
	}{{&r.CreatedAt, "created_at", created}, {&r.UpdatedAt, "updated_at", updated}, {&r.LastLoginAt, "last_login", lastLogin}} {
		if err := peerTime(t.to, t.name, t.text); err != nil {
			return err
		}
	}
	return nil
}

// peerTime sets *to from a peer's time: RFC 3339 (JSON exports), or
// PostgreSQL's text form (date, space, time with fraction and a "+00" zone,
// as in Supabase's CSV).
// Empty leaves it.
func peerTime(to *time.Time, name, text string) error {
	if text == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, text); err == nil {
			*to = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%s %q: not a time", name, text)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// keepUsername drops a username this library would refuse (Django's may be
// an email, Kratos's anything), so that the user is imported without it
// rather than refused; it reports whether it dropped one.
func keepUsername(r *importRow) bool {
	if r.Username == "" {
		return false
	}
	if _, err := users.NormalizeUsername(r.Username); err != nil {
		r.Username = ""
		return true
	}
	return false
}

// readPeer sends the records of a peer's export to out: a JSON array, JSON
// lines, or (Supabase) CSV with a header row. A record's "line" is its line
// for JSON lines and CSV, its position in the array for an array.
func readPeer(ctx context.Context, r *bufio.Reader, out chan<- parsed, pos func() int64, format string, dropped *int) error {
	toRow := peerFormats[format]
	send := func(p parsed) error {
		if p.err == nil && keepUsername(&p.row) {
			*dropped++
		}
		select {
		case out <- p:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	first := firstByte(r)
	switch {
	case first == '[':
		dec := json.NewDecoder(r)
		if _, err := dec.Token(); err != nil {
			return err
		}
		for i := 1; dec.More(); i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			p := parsed{line: i, offset: pos()}
			p.row, p.err = toRow(raw)
			if err := send(p); err != nil {
				return err
			}
		}
		return nil
	case first == '{' || first == 0:
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for line := 1; sc.Scan(); line++ {
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			p := parsed{line: line, offset: pos()}
			p.row, p.err = toRow(json.RawMessage(b))
			if err := send(p); err != nil {
				return err
			}
		}
		return sc.Err()
	case format == "supabase":
		return readSupabaseCSV(r, pos, send)
	}
	return usageError("-format %s: want a JSON array or JSON lines", format)
}

// firstByte returns the first byte of r that is not white space, unread, or
// 0 at the end.
func firstByte(r *bufio.Reader) byte {
	for i := 1; ; i++ {
		b, err := r.Peek(i)
		if err != nil || len(b) < i {
			return 0
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n':
		case 0xef, 0xbb, 0xbf: // a UTF-8 byte order mark
		default:
			return c
		}
	}
}

// readSupabaseCSV reads auth.users as CSV: every column is kept as a JSON
// string or null (an empty cell), and mapped as the JSON rows are.
func readSupabaseCSV(r io.Reader, pos func() int64, send func(parsed) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading the CSV header: %w", err)
	}
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	if !slices.Contains(header, "email") {
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
			m := make(map[string]any, len(rec))
			for i, v := range rec {
				switch {
				case v == "":
					m[header[i]] = nil
				case header[i] == "is_anonymous":
					m[header[i]] = v == "true" || v == "t"
				default:
					m[header[i]] = v
				}
			}
			raw, _ := json.Marshal(m)
			p.row, p.err = supabaseRow(raw)
		}
		if err := send(p); err != nil {
			return err
		}
	}
}

package users_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// This file holds every Go snippet of README.md and docs/*.md but the "Basic
// use" program (examples/readme/main.go), each inside a function of its own,
// so that each compiles, and runs in the examples below. TestREADMESnippets
// fails when a snippet of those pages is in none of the files that compile
// them.

// TestREADMESnippets checks that every ```go block of README.md and of each
// docs/*.md page appears, line for line (leading tabs and blank lines aside),
// in this file or in examples/readme/main.go, an example_*_test.go file or
// otel/example_test.go (the otel module's, which its own tests compile and
// run).
func TestREADMESnippets(t *testing.T) {
	var sources [][]string
	examples, err := filepath.Glob("example_*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"readme_test.go", "examples/readme/main.go", "otel/example_test.go"}, examples...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, snippetLines(string(b)))
	}
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, page := range append([]string{"README.md"}, docs...) {
		blocks := goBlocks(t, page)
		total += len(blocks)
		for _, block := range blocks {
			want := snippetLines(block)
			found := false
			for _, src := range sources {
				if containsRun(src, want) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("this %s snippet is in none of readme_test.go, examples/readme/main.go and example_*_test.go, so nothing compiles it:\n%s", page, block)
			}
		}
	}
	// The pages held 22 Go blocks when this was written: far fewer means the
	// fence changed and the test no longer sees them.
	if total < 18 {
		t.Fatalf("found %d Go blocks in README.md and docs/*.md, want at least 18: is the fence still ```go?", total)
	}
}

// goBlocks returns the text of each ```go block of the Markdown file name.
func goBlocks(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = new(strings.Builder)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s ends inside a ```go block", name)
	}
	return blocks
}

// snippetLines returns the non-blank lines of s without their indentation.
func snippetLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// containsRun reports whether want appears in src as consecutive lines.
func containsRun(src, want []string) bool {
	for i := 0; i+len(want) <= len(src); i++ {
		if slices.Equal(src[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// outbox is where sendMail, the application's mailer in the snippets, delivers.
var outbox = make(chan string, 4)

func sendMail(to, subject, link string) { outbox <- link }

// tokenOf returns the token of a link sendMail delivered.
func tokenOf(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		panic(err)
	}
	return u.Query().Get("token")
}

func readmeRequestPasswordReset(ctx context.Context, m *users.Manager, email string) error {
	// The "forgot password" form posts an email:
	d, err := m.RequestPasswordReset(ctx, email)
	switch {
	case err == nil:
		// d.To is the stored address: never mail the caller's input.
		go sendMail(d.To, "Reset your password", "https://app.example/reset?token="+d.Token)
	case errors.Is(err, users.ErrUnknownEmail), errors.Is(err, users.ErrAccountDisabled):
		// Say nothing: answer exactly as on success.
	default:
		return err // the store failed
	}
	return nil
}

func readmeResetPassword(ctx context.Context, m *users.Manager, token, newPassword string) error {
	// Later, the link's form posts the token and the new password:
	err := m.ResetPassword(ctx, token, newPassword) // ErrInvalidToken, or *ValidationError on "password"
	return err
}

func Example_passwordReset() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})

	fmt.Println(readmeRequestPasswordReset(ctx, m, "ada@example.com"))
	fmt.Println(readmeRequestPasswordReset(ctx, m, "nobody@example.com")) // the same answer
	token := tokenOf(<-outbox)
	fmt.Println(readmeResetPassword(ctx, m, token, "difference engine 1822"))
	fmt.Println(readmeResetPassword(ctx, m, token, "difference engine 1822"))
	_, err := m.Login(ctx, "ada@example.com", "difference engine 1822")
	fmt.Println(err)
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// users: invalid or expired token
	// <nil>
}

func readmeRequestEmailVerification(ctx context.Context, m *users.Manager, u *users.User) error {
	d, err := m.RequestEmailVerification(ctx, u.ID)
	if err != nil {
		return err
	}
	sendMail(d.To, "Confirm your email", "https://app.example/verify?token="+d.Token)
	return nil
}

func readmeVerifyEmail(ctx context.Context, m *users.Manager, token string) error {
	// When the link is followed:
	v, err := m.VerifyEmail(ctx, token) // ErrInvalidToken if used, expired, or the email changed
	if err != nil {
		return err
	}
	// v.EmailVerified == true, v.EmailVerifiedAt == now
	fmt.Println(v.EmailVerified, v.EmailVerifiedAt)
	return nil
}

func Example_emailVerification() {
	ctx := context.Background()
	m := exampleManager()
	u, _ := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})

	fmt.Println(readmeRequestEmailVerification(ctx, m, u))
	token := tokenOf(<-outbox)
	fmt.Println(readmeVerifyEmail(ctx, m, token))
	fmt.Println(readmeVerifyEmail(ctx, m, token))
	// Output:
	// <nil>
	// true 2026-01-01 12:00:00 +0000 UTC
	// <nil>
	// users: invalid or expired token
}

func readmeInvite(ctx context.Context, m *users.Manager) (*users.User, error) {
	u, tok, err := m.Invite(ctx, users.NewUser{Email: "ada@example.com", FirstName: "Ada"})
	if err != nil {
		return nil, err // ErrDuplicateEmail, *ValidationError, ...
	}
	// u.Status == users.StatusInvited: no password, cannot log in.
	sendMail(u.Email, "You are invited", "https://app.example/join?token="+tok)
	return u, nil
}

func readmeReinvite(ctx context.Context, m *users.Manager, u *users.User) error {
	// Lost the mail? A new token, and the earlier one is void:
	d, err := m.Reinvite(ctx, u.ID)
	if err != nil {
		return err
	}
	sendMail(d.To, "You are invited", "https://app.example/join?token="+d.Token)
	return nil
}

func readmeAcceptInvitation(ctx context.Context, m *users.Manager, token, password string) error {
	// The invitee follows the link and chooses a password: active, email
	// verified, and logged in.
	s, err := m.AcceptInvitation(ctx, token, password) // ErrInvalidToken, or *ValidationError on "password"
	if err != nil {
		return err
	}
	// s.Token is the session's bearer token.
	fmt.Println(s.User.Status, s.User.EmailVerified)
	return nil
}

func Example_invitation() {
	ctx := context.Background()
	m := exampleManager()

	u, err := readmeInvite(ctx, m)
	fmt.Println(u.Status, err)
	first := tokenOf(<-outbox)
	fmt.Println(readmeReinvite(ctx, m, u))
	second := tokenOf(<-outbox)
	fmt.Println(readmeAcceptInvitation(ctx, m, first, "analytical engine 1843"))
	fmt.Println(readmeAcceptInvitation(ctx, m, second, "analytical engine 1843"))
	// Output:
	// invited <nil>
	// <nil>
	// users: invalid or expired token
	// active true
	// <nil>
}

func readmeRequestMagicLink(ctx context.Context, m *users.Manager, email string) error {
	d, err := m.RequestMagicLink(ctx, email)
	switch {
	case err == nil:
		go sendMail(d.To, "Your sign-in link", "https://app.example/magic?token="+d.Token)
	case errors.Is(err, users.ErrUnknownEmail), errors.Is(err, users.ErrAccountDisabled):
		// Answer exactly as on success.
	default:
		return err // the store failed
	}
	return nil
}

func readmeLoginWithMagicLink(ctx context.Context, m *users.Manager, token string) error {
	// When the link is followed (it works once; again gives ErrInvalidToken):
	s, err := m.LoginWithMagicLink(ctx, token) // a new session; the email counts as verified
	if err != nil {
		return err
	}
	fmt.Println(s.User.Email, s.User.EmailVerified)
	return nil
}

func Example_magicLink() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})

	fmt.Println(readmeRequestMagicLink(ctx, m, "ada@example.com"))
	fmt.Println(readmeRequestMagicLink(ctx, m, "nobody@example.com")) // the same answer
	token := tokenOf(<-outbox)
	fmt.Println(readmeLoginWithMagicLink(ctx, m, token))
	fmt.Println(readmeLoginWithMagicLink(ctx, m, token))
	// Output:
	// <nil>
	// <nil>
	// ada@example.com true
	// <nil>
	// users: invalid or expired token
}

func readmeRequestEmailChange(ctx context.Context, m *users.Manager, userID, currentPassword, newEmail string) error {
	d, err := m.RequestEmailChange(ctx, userID, currentPassword, newEmail) // ErrInvalidCredentials, ErrAccountLocked
	if err != nil {
		return err
	}
	sendMail(d.To, "Confirm your new email", "https://app.example/email?token="+d.Token) // d.To is newEmail
	return nil
}

func readmeConfirmEmailChange(ctx context.Context, m *users.Manager, token string) error {
	// When the link is followed:
	u, err := m.ConfirmEmailChange(ctx, token) // ErrDuplicateEmail shows only here, to that inbox
	if err != nil {
		return err
	}
	fmt.Println(u.Email, u.EmailVerified)
	return nil
}

func Example_emailChange() {
	ctx := context.Background()
	m := exampleManager()
	u, _ := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})

	fmt.Println(readmeRequestEmailChange(ctx, m, u.ID, "wrong password", "ada@lovelace.example"))
	fmt.Println(readmeRequestEmailChange(ctx, m, u.ID, "analytical engine 1843", "ada@lovelace.example"))
	token := tokenOf(<-outbox)
	fmt.Println(readmeConfirmEmailChange(ctx, m, token))
	fmt.Println(readmeConfirmEmailChange(ctx, m, token))
	// Output:
	// users: invalid credentials
	// <nil>
	// ada@lovelace.example true
	// <nil>
	// users: invalid or expired token
}

// myStore stands for a Store of your own: here the memory store behind a type
// of its own, which must pass the suite as the memory store does. TestMyStore
// is also the memory store's run of the whole suite (see TestMemoryStore).
type myStore struct{ users.Store }

func newMyStore(t *testing.T) users.Store { return myStore{users.NewMemoryStore()} }

func TestMyStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) users.Store { return newMyStore(t) })
}

// docs/audit.md.
func readmeAudit(ctx context.Context, m *users.Manager, userID string) error {
	page, err := m.Audit(ctx, users.AuditFilter{UserID: userID, Limit: 50})
	if err != nil {
		return err
	}
	for _, e := range page.Entries {
		fmt.Println(e.Time.Format(time.RFC3339), e.Type, e.ActorID, e.IP)
	}
	// page.Next, passed as AuditFilter.Before, gives the next (older) page.
	return nil
}

func readmeOnEvent(store users.Store) (*users.Manager, error) {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	m, err := users.New(store, &users.Options{
		OnEvent: func(ctx context.Context, e users.AuditEntry) {
			logger.InfoContext(ctx, "audit", "event", e)
		},
		AuditRetention: 90 * 24 * time.Hour,
	})
	return m, err
}

// TestREADMEAudit runs the snippets of docs/audit.md: the hook's Manager
// records a creation, and the audit query reads it back.
func TestREADMEAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := readmeOnEvent(users.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	// A hash made at bcrypt's lowest cost, not a password the Manager would
	// hash at the README's default cost: the test is about the audit log.
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u, err := m.Create(ctx, users.NewUser{Email: "audit@example.com", PasswordHash: string(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FlushEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if err := readmeAudit(ctx, m, u.ID); err != nil {
		t.Fatal(err)
	}
}

package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

// pagingStore records the pages export asks for.
type pagingStore struct {
	users.Store
	out      *bytes.Buffer
	maxLimit int
	pages    int
	written  []int // bytes of output already written when each page was asked for
}

func (s *pagingStore) ListUsers(ctx context.Context, q users.ListQuery) ([]*users.UserRecord, error) {
	s.pages++
	s.maxLimit = max(s.maxLimit, q.Limit)
	s.written = append(s.written, s.out.Len())
	return s.Store.ListUsers(ctx, q)
}

// export holds a page of users at a time, whatever the number of users: it
// asks the store for pages of at most 1000 and writes each before the next.
func TestExportPages(t *testing.T) {
	ctx := t.Context()
	mem := users.NewMemoryStore()
	m, err := users.New(mem, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("old system password"), 4)
	const n = 2500
	for i := range n {
		if _, err := m.Create(ctx, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: string(hash)}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	s := &pagingStore{Store: mem, out: &out}
	got, err := exportUsers(ctx, s, &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if got != n || strings.Count(out.String(), "\n") != n || strings.Count(out.String(), string(hash)) != n {
		t.Errorf("exported %d users, %d lines; want %d with their hashes", got, strings.Count(out.String(), "\n"), n)
	}
	if s.pages != 3 || s.maxLimit > 1000 {
		t.Errorf("asked for %d pages of up to %d users; want 3 of at most 1000", s.pages, s.maxLimit)
	}
	for i := 1; i < len(s.written); i++ {
		if s.written[i] <= s.written[i-1] {
			t.Errorf("page %d was asked for before page %d was written out (output %v)", i+1, i, s.written)
		}
	}
}

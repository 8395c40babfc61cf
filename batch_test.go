package users_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

func TestManager_Import(t *testing.T) {
	t.Parallel()
	imported, err := bcrypt.GenerateFromPassword([]byte("old system password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, nil)
		rows := []users.NewUser{
			{Email: " Ada@Example.com ", Username: "Ada", Password: storetest.Password, FirstName: "Ada"},
			{Email: "grace@example.com", PasswordHash: string(imported), Role: users.RoleAdmin},
			{Email: "alan@example.com", Password: storetest.Password, Status: users.StatusSuspended, AccountID: "acme"},
		}
		res, err := f.M.Import(t.Context(), rows)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(rows) {
			t.Fatalf("got %d results for %d rows", len(res), len(rows))
		}
		for i, want := range []string{"ada@example.com", "grace@example.com", "alan@example.com"} {
			if res[i].Err != nil || res[i].User == nil {
				t.Fatalf("row %d: %+v", i, res[i])
			}
			if res[i].User.Email != want {
				t.Errorf("row %d: created %q, want %q (results in input order, normalised)", i, res[i].User.Email, want)
			}
			got, err := f.M.Get(t.Context(), res[i].User.ID)
			if err != nil || got.Email != want {
				t.Errorf("row %d: Get = %v, %v", i, got, err)
			}
		}
		if res[0].User.Username != "ada" || res[1].User.Role != users.RoleAdmin || res[2].User.Status != users.StatusSuspended {
			t.Errorf("fields not kept as Create keeps them: %+v %+v %+v", res[0].User, res[1].User, res[2].User)
		}
		f.MustLogin(t, "ada", storetest.Password)
		f.MustLogin(t, "grace@example.com", "old system password")
		if _, err := f.M.Login(t.Context(), "grace@example.com", storetest.Password); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("imported hash accepted a wrong password: %v", err)
		}
	})

	t.Run("PartialFailures", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "taken@example.com", Username: "taken"})
		rows := []users.NewUser{
			{Email: "one@example.com", Username: "one", PasswordHash: string(imported)}, // 0 ok
			{Email: "not an email", PasswordHash: string(imported)},                     // 1 invalid
			{Email: "taken@example.com", Password: storetest.Password},                  // 2 taken in the store
			{Email: "two@example.com", Username: "taken", Password: storetest.Password}, // 3 username taken
			{Email: "ONE@example.com", PasswordHash: string(imported)},                  // 4 duplicate in the batch
			{Email: "three@example.com", Username: "one", Password: storetest.Password}, // 5 username in the batch
			{Email: "four@example.com", Password: "short"},                              // 6 invalid password
			{Email: "five@example.com", PasswordHash: "$2a$10$not-a-hash"},              // 7 invalid hash
			{Email: "six@example.com", Password: storetest.Password},                    // 8 ok
		}
		res, err := f.M.Import(t.Context(), rows)
		if err != nil {
			t.Fatal(err)
		}
		wantField := map[int]string{1: "email", 6: "password", 7: "password_hash"}
		wantErr := map[int]error{2: users.ErrDuplicateEmail, 3: users.ErrDuplicateUsername, 4: users.ErrDuplicateEmail, 5: users.ErrDuplicateUsername}
		for i, r := range res {
			var ve *users.ValidationError
			switch {
			case wantField[i] != "":
				if !errors.As(r.Err, &ve) || ve.Field != wantField[i] || r.User != nil {
					t.Errorf("row %d: got %+v, want a *ValidationError on %q", i, r, wantField[i])
				}
			case wantErr[i] != nil:
				if !errors.Is(r.Err, wantErr[i]) || r.User != nil {
					t.Errorf("row %d: got %+v, want %v", i, r, wantErr[i])
				}
			case r.Err != nil || r.User == nil:
				t.Errorf("row %d: got %+v, want a created user", i, r)
			}
		}
		if n, err := f.M.Count(t.Context(), users.Filter{}); err != nil || n != 3 {
			t.Errorf("Count = %d, %v; want 3 (the old user and rows 0 and 8): refused rows must store nothing, good ones must all be stored", n, err)
		}
		for _, e := range []string{"two@example.com", "three@example.com", "four@example.com", "five@example.com"} {
			if _, err := f.M.GetByEmail(t.Context(), e); !errors.Is(err, users.ErrNotFound) {
				t.Errorf("refused row %s was stored: %v", e, err)
			}
		}
	})

	t.Run("ManyBatches", func(t *testing.T) {
		f := newFixture(t, nil)
		n := users.ImportBatch + 500 // two store transactions
		rows := make([]users.NewUser, n)
		for i := range rows {
			rows[i] = users.NewUser{Email: fmt.Sprintf("u%05d@example.com", i), PasswordHash: string(imported)}
		}
		// A duplicate of a row in an earlier batch, and one inside the last batch.
		rows[users.ImportBatch+3].Email = rows[7].Email
		rows[n-1].Email = rows[n-2].Email
		res, err := f.M.Import(t.Context(), rows)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			dup := i == users.ImportBatch+3 || i == n-1
			switch {
			case dup && !errors.Is(r.Err, users.ErrDuplicateEmail):
				t.Errorf("row %d: got %v, want ErrDuplicateEmail", i, r.Err)
			case !dup && (r.Err != nil || r.User == nil || r.User.Email != rows[i].Email):
				t.Errorf("row %d: got %+v, want user %s", i, r, rows[i].Email)
			}
		}
		if got, err := f.M.Count(t.Context(), users.Filter{}); err != nil || got != n-2 {
			t.Errorf("Count = %d, %v; want %d", got, err, n-2)
		}
	})

	t.Run("HashesConcurrentlyWithinLimit", func(t *testing.T) {
		const limit = 3
		var mu sync.Mutex
		inside, most := 0, 0
		both := make(chan struct{})
		var once sync.Once
		f := newFixture(t, func(o *users.Options) {
			o.MaxConcurrentHashes = limit
			o.PasswordChecker = func(ctx context.Context, pw string, u *users.User) error {
				mu.Lock()
				inside++
				most = max(most, inside)
				if inside == 2 {
					once.Do(func() { close(both) })
				}
				mu.Unlock()
				// Wait for a second row to be hashed alongside, for a while.
				select {
				case <-both:
				case <-time.After(5 * time.Second):
				}
				time.Sleep(time.Millisecond)
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			}
		})
		rows := make([]users.NewUser, 12)
		for i := range rows {
			rows[i] = users.NewUser{Email: fmt.Sprintf("p%d@example.com", i), Password: storetest.Password}
		}
		res, err := f.M.Import(t.Context(), rows)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Errorf("row %d: %v", i, r.Err)
			}
		}
		if most < 2 {
			t.Errorf("at most %d password of a batch was prepared at a time; want them hashed concurrently", most)
		}
		if most > limit {
			t.Errorf("%d passwords were prepared at once, more than MaxConcurrentHashes = %d", most, limit)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		f := newFixture(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.M.Import(ctx, []users.NewUser{{Email: "a@example.com", PasswordHash: string(imported)}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if n, _ := f.M.Count(t.Context(), users.Filter{}); n != 0 {
			t.Errorf("a canceled Import stored %d users", n)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		f := newFixture(t, nil)
		res, err := f.M.Import(t.Context(), nil)
		if err != nil || len(res) != 0 {
			t.Errorf("Import(nil) = %v, %v", res, err)
		}
	})
}

func TestManager_GetMany(t *testing.T) {
	f := newFixture(t, nil)
	a := f.mustCreate(t, users.NewUser{Email: "a@example.com"})
	b := f.mustCreate(t, users.NewUser{Email: "b@example.com"})

	t.Run("InputOrderAndMissing", func(t *testing.T) {
		got, err := f.M.GetMany(t.Context(), []string{b.ID, "01ARZ3NDEKTSV4RRFFQ69G5FAV", a.ID, "", b.ID})
		if err != nil {
			t.Fatal(err)
		}
		want := []*users.User{b, nil, a, nil, b}
		if len(got) != len(want) {
			t.Fatalf("got %d entries, want %d", len(got), len(want))
		}
		for i := range want {
			if (got[i] == nil) != (want[i] == nil) || got[i] != nil && got[i].ID != want[i].ID {
				t.Errorf("entry %d: got %v, want %v", i, got[i], want[i])
			}
		}
	})

	t.Run("Cap", func(t *testing.T) {
		ids := make([]string, users.MaxBatch)
		if _, err := f.M.GetMany(t.Context(), ids); err != nil {
			t.Errorf("MaxBatch ids: %v", err)
		}
		_, err := f.M.GetMany(t.Context(), append(ids, a.ID))
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != "ids" {
			t.Errorf("MaxBatch+1 ids: got %v, want a *ValidationError on ids", err)
		}
	})

	t.Run("ByEmail", func(t *testing.T) {
		got, err := f.M.GetManyByEmail(t.Context(), []string{" B@Example.com", "nobody@example.com", "not an email", "a@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || got[0] == nil || got[0].ID != b.ID || got[1] != nil || got[2] != nil || got[3] == nil || got[3].ID != a.ID {
			t.Errorf("got %v; want [b nil nil a]", got)
		}
		_, err = f.M.GetManyByEmail(t.Context(), make([]string, users.MaxBatch+1))
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != "emails" {
			t.Errorf("MaxBatch+1 emails: got %v, want a *ValidationError on emails", err)
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		got, err := f.M.GetMany(t.Context(), []string{a.ID})
		if err != nil {
			t.Fatal(err)
		}
		got[0].Email = "changed@example.com"
		if again, _ := f.M.Get(t.Context(), a.ID); again.Email != "a@example.com" {
			t.Errorf("changing a result changed the store: %q", again.Email)
		}
	})
}

package users_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/userkit/users"
)

// backupHandler streams a consistent snapshot of the store's file while the
// application keeps serving. The running process holds the file's lock, so this
// is how it is backed up without stopping it: serve it to administrators only.
func backupHandler(store *users.BoltStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="users-backup.db"`)
		if _, err := store.Backup(r.Context(), w); err != nil {
			// The status is sent with the first bytes: the client sees a
			// cut-off body, and a cut-off bbolt file does not open.
			log.Printf("backup: %v", err)
		}
	})
}

// An admin-only HTTP endpoint that streams a hot backup of the bbolt file, and
// the snapshot it gives opened as a store: `curl -H "Authorization: Bearer
// $TOKEN" -o backup.db https://app.example/admin/backup`.
func ExampleBoltStore_Backup() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "backup-example")
	defer os.RemoveAll(dir)

	store, err := users.OpenBoltStore(filepath.Join(dir, "users.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m, _ := users.New(store, &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
	})
	m.Create(ctx, users.NewUser{Email: "root@example.com", Password: "analytical engine 1843", Role: users.RoleAdmin})
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "difference engine 1822"})

	mux := http.NewServeMux()
	mux.Handle("GET /admin/backup", m.Middleware("session", users.RequireRole(users.RoleAdmin)(backupHandler(store))))

	for _, login := range [][2]string{{"ada@example.com", "difference engine 1822"}, {"root@example.com", "analytical engine 1843"}} {
		s, _ := m.Login(ctx, login[0], login[1])
		r := httptest.NewRequest("GET", "/admin/backup", nil)
		r.Header.Set("Authorization", "Bearer "+s.Token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(login[0], w.Code)
		if w.Code != http.StatusOK {
			continue
		}

		// What the administrator saved opens as a store, consistent, with every user.
		saved := filepath.Join(dir, "backup.db")
		os.WriteFile(saved, w.Body.Bytes(), 0o600)
		restored, err := users.OpenBoltStore(saved, &users.BoltOptions{Timeout: time.Second})
		if err != nil {
			log.Fatal(err)
		}
		st, _ := restored.Stats(ctx, time.Now())
		fmt.Println("check:", restored.Check(ctx), "users:", st.Users)
		restored.Close()
	}
	// Output:
	// ada@example.com 403
	// root@example.com 200
	// check: <nil> users: 2
}

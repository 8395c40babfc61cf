package postgres_test

import (
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// BenchmarkValidateToken compares Manager.ValidateToken on a Store without a
// session cache, one round trip to PostgreSQL each, with one on a Store with
// Options.SessionCache, served from memory once cached, in the same run:
//
//	bash .ci/postgres.sh go test -run '^$' -bench ValidateToken -count 5 .
func BenchmarkValidateToken(b *testing.B) {
	db := openTestDB(b)
	for _, c := range []struct {
		name string
		opts *postgres.Options
	}{
		{"uncached", nil},
		{"cached", &postgres.Options{SessionCache: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := postgres.NewWithOptions(b.Context(), db.pool(b, db.schema(b)), c.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			if c.opts != nil {
				waitOn(b, s, 0)
			}
			f := storetest.NewFixture(b, s, nil)
			f.MustCreate(b, users.NewUser{Email: "bench@example.com", Password: storetest.Password})
			token := f.MustLogin(b, "bench@example.com", storetest.Password).Token
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.M.ValidateToken(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package postgres_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// ExampleNew opens a Store over a pool and a Manager over the Store. It needs a
// server, so it is compiled but not run.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL")) // e.g. postgres://app@db/app?search_path=auth
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := postgres.New(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	m, err := users.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}

// ExampleNewWithOptions opens a Store with a session cache over a pool that
// names a primary and its standby, as the README's "Running on several
// machines" shows. It needs servers, so it is compiled but not run.
func ExampleNewWithOptions() {
	ctx := context.Background()
	// Both servers; whichever takes writes is used.
	pool, err := pgxpool.New(ctx, "postgres://app:secret@db1:5432,db2:5432/app?target_session_attrs=read-write")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.NewWithOptions(ctx, pool, &postgres.Options{SessionCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the cache's listening connection
	m, err := users.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}

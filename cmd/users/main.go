// Command users administers the users of an application built on
// github.com/userkit/users: it creates the first admin, answers support
// questions, imports and exports users, and checks and backs up a bbolt file.
// This build knows bbolt files only; the same command with PostgreSQL as well
// (-dsn) is github.com/userkit/users/postgres/cmd/users, in the module that
// holds the PostgreSQL driver.
//
// Install it with
//
//	go install github.com/userkit/users/cmd/users@latest
//
// Usage:
//
//	users <command> [flags] [arguments]
//
// The commands:
//
//	create-admin    create an administrator (the first one on a new server)
//	list            list users, with filters and paging
//	find            search users by email, username or name
//	get             show one user, by ID, email or username
//	set-role        change a user's role
//	suspend         suspend a user and end their sessions
//	activate        make a user active again
//	unlock          end a user's login lock
//	remove          delete a user with their sessions and tokens
//	reset-password  print a password-reset token, or set a password
//	sessions        list a user's sessions, or revoke them
//	import          import users from JSON lines or CSV
//	export          write every user as JSON lines
//	check           verify the file's records and indexes
//	backup          copy the file to a consistent snapshot
//	stats           count users by role and status, sessions and tokens
//
// Every command takes -db (the file, default users.db) or, in the PostgreSQL
// build, -dsn (a connection string, default $USERS_DSN), -timeout (how long
// to wait for a file another process holds, default 1s), and -h for its own
// help. "users help <command>" prints the same help. Flags may come before or
// after the arguments ("users get ada -json"); everything after "--" is an
// argument.
//
// A bbolt file can be open in one process at a time. While the application
// runs, it holds the file and every command fails with exit code 3 after
// -timeout: stop the application first, or take the backup through the
// application itself (BoltStore.Backup).
//
// Passwords are never taken from flags or arguments, which other users of the
// machine can see: they come from $USERS_PASSWORD when it is set, or else from
// a prompt on the terminal that does not echo.
//
// Environment:
//
//	USERS_PASSWORD     the password for create-admin and reset-password -set
//	USERS_BCRYPT_COST  bcrypt cost for passwords set here (10 to 31, default 12);
//	                   match the application's Options.BcryptCost
//	USERS_ROLES        the application's roles, comma-separated
//	                   (default admin,user,viewer); match Options.Roles
//	USERS_FIREBASE_SIGNER_KEY, USERS_FIREBASE_SALT_SEPARATOR,
//	USERS_FIREBASE_ROUNDS, USERS_FIREBASE_MEM_COST
//	                   a Firebase project's password hash parameters, for
//	                   importing its $firebase-scrypt$ hashes; match
//	                   Options.FirebaseScrypt
//	USERS_PROGRESS_INTERVAL  how often import reports progress without a
//	                   terminal (default 5s)
//	USERS_DSN          the PostgreSQL database, when -dsn is not given
//	                   (postgres/cmd/users only)
//
// Exit codes:
//
//	0  success
//	1  the command failed (invalid input, a refused password, an I/O error, ...)
//	2  usage: unknown command, bad flag or missing argument
//	3  the database file is in use by another process
//	4  the user or session was not found
//	5  check found the file inconsistent (damaged)
//	6  import finished but refused some rows
//
// Errors go to standard error.
package main

import "github.com/userkit/users/internal/cli"

func main() { cli.Main(nil) }

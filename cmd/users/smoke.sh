#!/usr/bin/env bash
# Smoke test of cmd/users, for CI: every command on a fresh bbolt file, as the
# README shows them, through `go run ./cmd/users` where only the output matters
# and through the built binary where the exit code does (go run exits 1 for any
# failure). The Go tests in this folder check the details.
# Run from anywhere: cmd/users/smoke.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "smoke: FAIL: $*" >&2
	exit 1
}
unset USERS_PASSWORD USERS_ROLES
export USERS_BCRYPT_COST=10

cd "$repo"
go build -o "$tmp/users" ./cmd/users
users() { "$tmp/users" "$@"; }
gorun() { go run ./cmd/users "$@"; }
db=$tmp/users.db

# want CODE CMD...: CMD exits with CODE; its output goes to $tmp/out.
want() {
	local code=$1 got=0
	shift
	"$@" >"$tmp/out" 2>&1 </dev/null || got=$?
	[ "$got" -eq "$code" ] || { cat "$tmp/out" >&2; fail "$* exited $got, want $code"; }
}
has() { grep -qF -- "$1" "$tmp/out" || { cat "$tmp/out" >&2; fail "output lacks: $1"; }; }

want 1 users list -db "$db"; has "does not exist"
USERS_PASSWORD='a long admin password' want 0 gorun create-admin -db "$db" -username root admin@example.com
has "created admin admin@example.com"
printf 'email,username,first_name,password\nada@example.com,ada,Ada,difference engine 1822\nnot-an-email,x,X,whatever password\n' >"$tmp/in.csv"
want 6 users import -db "$db" "$tmp/in.csv"; has "2 rows: 1 imported, 0 exists, 1 refused"; has "in.csv:3: refused"
want 6 users import -db "$db" "$tmp/in.csv"; has "2 rows: 0 imported, 1 exists, 1 refused"
want 0 gorun list -db "$db"; has "ada@example.com"
want 0 users find -db "$db" ada -json; has '"username":"ada"'
want 0 users get -db "$db" root; has "admin@example.com (verified"
want 0 users set-role -db "$db" ada viewer; has "role viewer"
want 0 users suspend -db "$db" ada; has "suspended"
want 0 users activate -db "$db" ada; has "active"
want 0 users unlock -db "$db" ada; has "was not locked"
want 0 users reset-password -db "$db" ada; has "password-reset token for ada@example.com"
USERS_PASSWORD='jacquard loom punch cards' want 0 users reset-password -db "$db" -set ada; has "password set"
want 0 users sessions -db "$db" ada; has "ID"
want 0 users export -db "$db"; has '"email":"ada@example.com"'
want 0 users stats -db "$db"; has "admin 1, user 0, viewer 1"
want 0 gorun check -db "$db"; has "ok: $db is consistent"
# The README's move to another store: export -with-hashes piped into import
# gives every user back, the same bytes (cmd/users's tests and, on PostgreSQL,
# postgres/cmd/users's tests check every field).
users export -db "$db" -with-hashes 2>/dev/null | users import -db "$tmp/copy.db" -allow-roles admin >"$tmp/out" 2>&1 ||
	{ cat "$tmp/out" >&2; fail "export | import"; }
has "2 rows: 2 imported"
cmp <(users export -db "$db" -with-hashes 2>/dev/null) <(users export -db "$tmp/copy.db" -with-hashes 2>/dev/null) ||
	fail "export | import into an empty file changed the users"
want 0 users backup -db "$db" -o "$tmp/backup.db"
want 0 users check -db "$tmp/backup.db"; has "(2 users"
want 1 users remove -db "$db" ada; has "nothing removed"
want 0 users remove -db "$db" -yes ada; has "removed ada@example.com"
want 4 users get -db "$db" ada
want 2 users frobnicate
echo "smoke: cmd/users OK"

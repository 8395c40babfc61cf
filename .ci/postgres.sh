#!/usr/bin/env bash
# Tests the PostgreSQL store (module postgres/) against a throwaway PostgreSQL
# server that this script starts and always stops.
#
#   bash .ci/postgres.sh                  # vet and test the postgres module
#   bash .ci/postgres.sh COMMAND [ARG...]  # run COMMAND instead, from postgres/
#
# For example, the scale benchmark at small sizes:
#
#   bash .ci/postgres.sh go run ./internal/scalebench -sizes 1000,5000
#
# It uses the PostgreSQL binaries already installed (15 preferred) and installs
# Debian's postgresql package only when there are none. The server runs as a
# non-root user (initdb refuses root), from a temporary directory, listening on
# a unix socket in that directory and on 127.0.0.1 at a free port from 55432 on,
# with a random password. The tests get its address in USERS_POSTGRES_DSN.
# Works as root or not, without a terminal or standard input.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'postgres.sh: %s\n' "$*" >&2; }

# find_bindir prints the directory holding initdb, pg_ctl and postgres.
find_bindir() {
	local d
	for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return 0
	fi
	return 1
}

if ! bindir=$(find_bindir); then
	log "no PostgreSQL binaries found: installing Debian's postgresql package"
	if [ "$(id -u)" -ne 0 ]; then
		log "installing needs root; run as root or install PostgreSQL first"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null
	apt-get install -y -q --no-install-recommends postgresql </dev/null
	bindir=$(find_bindir) || { log "postgresql installed but initdb not found"; exit 1; }
fi
log "using $("$bindir/postgres" --version) from $bindir"

# pg_isready, psql and createdb are in bindir on Debian, and on PATH elsewhere.
tool() {
	if [ -x "$bindir/$1" ]; then echo "$bindir/$1"; else command -v "$1"; fi
}
pg_isready=$(tool pg_isready)
psql=$(tool psql)

# The server must not run as root: use the postgres system user, or make one.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	pguser=postgres
	if ! id "$pguser" >/dev/null 2>&1; then
		pguser=userkit-pg
		id "$pguser" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pguser"
	fi
	if command -v runuser >/dev/null; then
		as_pg=(runuser -u "$pguser" --)
	else
		as_pg=(su -s /bin/sh "$pguser" -c '"$0" "$@"')
	fi
fi

tmp=$(mktemp -d /tmp/userkit-pg.XXXXXX)
data=$tmp/data
started=
cleanup() {
	local status=$?
	if [ -n "$started" ]; then
		"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 ||
			log "pg_ctl stop failed"
	fi
	if [ "$status" -ne 0 ] && [ -f "$tmp/server.log" ]; then
		log "server log (last 40 lines):"
		tail -n 40 "$tmp/server.log" >&2 || true
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$tmp/pwfile"
if [ "$(id -u)" -eq 0 ]; then
	chown -R "$pguser" "$tmp"
fi
chmod 700 "$tmp"

"${as_pg[@]}" "$bindir/initdb" -D "$data" -U userkit --pwfile="$tmp/pwfile" \
	--auth=scram-sha-256 --encoding=UTF8 --no-locale >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; exit 1; }

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port=
for p in $(seq 55432 55532); do
	port_free "$p" || continue
	if "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 60 start \
		-o "-c listen_addresses=127.0.0.1 -p $p -k $tmp -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		>/dev/null; then
		port=$p
		started=1
		break
	fi
	log "server did not start on port $p; trying the next"
done
[ -n "$port" ] || { log "no free port to start PostgreSQL on"; exit 1; }

for _ in $(seq 1 60); do
	"$pg_isready" -q -h 127.0.0.1 -p "$port" && break
	sleep 1
done
"$pg_isready" -h 127.0.0.1 -p "$port" >&2

export PGPASSWORD=$password
"$psql" -q -X -h 127.0.0.1 -p "$port" -U userkit -d postgres -v ON_ERROR_STOP=1 \
	-c 'CREATE DATABASE userkit_test' </dev/null
unset PGPASSWORD
export USERS_POSTGRES_DSN="postgres://userkit:$password@127.0.0.1:$port/userkit_test?sslmode=disable"
cd "$repo/postgres"
if [ "$#" -gt 0 ]; then
	log "PostgreSQL ready on 127.0.0.1:$port; running: $*"
	"$@"
	exit
fi
log "PostgreSQL ready on 127.0.0.1:$port; running the postgres module's vet and tests"
go vet ./...
go test -race -count=1 ./...

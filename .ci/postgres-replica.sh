#!/usr/bin/env bash
# Starts a replicated PostgreSQL on loopback: a primary and a streaming standby
# in synchronous replication, from the machine's PostgreSQL binaries (15
# preferred), runs a command against them, and always stops both.
#
#   bash .ci/postgres-replica.sh COMMAND [ARG...]   # run from postgres/
#
# For example, the failover test:
#
#   bash .ci/postgres-replica.sh go run ./internal/failover
#
# The standby is made with pg_basebackup and streams from the primary, which
# runs with synchronous_commit = on and synchronous_standby_names naming the
# standby: a commit returns only once the standby has flushed it, so every
# acknowledged write is on both. The command gets, in its environment:
#
#   USERS_POSTGRES_DSN     a connection string naming both servers, with
#                          target_session_attrs=read-write, so that it reaches
#                          whichever is the primary
#   USERS_PG_PRIMARY_DSN   the primary alone; USERS_PG_STANDBY_DSN the standby alone
#   USERS_PG_KILL_PRIMARY  a script that SIGKILLs the primary's postmaster and
#                          every process of it at once, as losing its machine would
#   USERS_PG_PROMOTE       a script that promotes the standby (pg_promote) and
#                          waits until it accepts writes
#
# After a promotion the new primary has no standby and commits without waiting
# for one. Works as root or not, without a terminal; needs the PostgreSQL
# binaries installed (.ci/postgres.sh installs them when missing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'postgres-replica.sh: %s\n' "$*" >&2; }

bindir=
for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
	if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_basebackup" ]; then
		bindir=$d
		break
	fi
done
[ -n "$bindir" ] || { log "no PostgreSQL binaries with pg_basebackup found; run .ci/postgres.sh once to install them"; exit 1; }
log "using $("$bindir/postgres" --version) from $bindir"
tool() { if [ -x "$bindir/$1" ]; then echo "$bindir/$1"; else command -v "$1"; fi; }
pg_isready=$(tool pg_isready)
psql=$(tool psql)

# The servers must not run as root: use the postgres system user, or make one.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	pguser=postgres
	if ! id "$pguser" >/dev/null 2>&1; then
		pguser=userkit-pg
		id "$pguser" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pguser"
	fi
	as_pg=(runuser -u "$pguser" --)
fi

tmp=$(mktemp -d /tmp/userkit-pgrep.XXXXXX)
primary=$tmp/primary
standby=$tmp/standby
cleanup() {
	local status=$?
	for d in "$standby" "$primary"; do
		if [ -f "$d/postmaster.pid" ]; then
			"${as_pg[@]}" "$bindir/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	done
	if [ "$status" -ne 0 ]; then
		for f in "$tmp"/primary.log "$tmp"/standby.log; do
			[ -f "$f" ] || continue
			log "$(basename "$f") (last 20 lines):"
			tail -n 20 "$f" >&2 || true
		done
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$tmp/pwfile"
[ "$(id -u)" -eq 0 ] && chown -R "$pguser" "$tmp"
chmod 700 "$tmp"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port FROM: the first free port from FROM on
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		port_free "$p" && { echo "$p"; return 0; }
	done
	return 1
}

"${as_pg[@]}" "$bindir/initdb" -D "$primary" -U userkit --pwfile="$tmp/pwfile" \
	--auth=scram-sha-256 --encoding=UTF8 --no-locale >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; exit 1; }

# Settings for both servers, given on the command line so that pg_basebackup
# does not copy the primary's into the standby. fsync is off: the test kills a
# server process, never the machine, so what the kernel holds survives.
common="-c listen_addresses=127.0.0.1 -k $tmp -c max_connections=200 -c fsync=off -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on -c wal_keep_size=256MB"
pport=$(free_port 56432)
"${as_pg[@]}" "$bindir/pg_ctl" -D "$primary" -l "$tmp/primary.log" -w -t 60 start \
	-o "$common -p $pport -c synchronous_commit=on -c synchronous_standby_names=standby1" >/dev/null
export PGPASSWORD=$password
"$psql" -q -X -h 127.0.0.1 -p "$pport" -U userkit -d postgres -v ON_ERROR_STOP=1 \
	-c 'CREATE DATABASE userkit_test' </dev/null &
create_db=$! # waits for the standby: its commit is synchronous

"${as_pg[@]}" env PGPASSWORD="$password" "$bindir/pg_basebackup" -h 127.0.0.1 -p "$pport" -U userkit \
	-D "$standby" -X stream -c fast >"$tmp/basebackup.log" 2>&1 ||
	{ cat "$tmp/basebackup.log" >&2; exit 1; }
"${as_pg[@]}" touch "$standby/standby.signal"
printf "primary_conninfo = 'host=127.0.0.1 port=%s user=userkit password=%s application_name=standby1'\n" \
	"$pport" "$password" | "${as_pg[@]}" tee -a "$standby/postgresql.auto.conf" >/dev/null
sport=$(free_port $((pport + 1)))
"${as_pg[@]}" "$bindir/pg_ctl" -D "$standby" -l "$tmp/standby.log" -w -t 60 start \
	-o "$common -p $sport" >/dev/null
wait "$create_db"

for _ in $(seq 1 60); do
	state=$("$psql" -X -A -t -h 127.0.0.1 -p "$pport" -U userkit -d postgres \
		-c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'" </dev/null)
	[ "$state" = sync ] && break
	sleep 1
done
[ "$state" = sync ] || { log "the standby never became synchronous (state: ${state:-none})"; exit 1; }
log "primary on 127.0.0.1:$pport, synchronous standby on 127.0.0.1:$sport"

cat >"$tmp/kill-primary" <<KILL
#!/usr/bin/env bash
# SIGKILLs the primary's postmaster and all its children at once.
set -eu
pid=\$(head -n 1 "$primary/postmaster.pid")
kill -KILL \$pid \$(ps -o pid= --ppid "\$pid") 2>/dev/null || true
KILL
cat >"$tmp/promote" <<PROMOTE
#!/usr/bin/env bash
# Promotes the standby and waits until it takes writes.
set -eu
export PGPASSWORD=$password
"$psql" -q -X -h 127.0.0.1 -p $sport -U userkit -d postgres -v ON_ERROR_STOP=1 -c 'SELECT pg_promote(true, 60)' </dev/null >/dev/null
PROMOTE
chmod 755 "$tmp/kill-primary" "$tmp/promote"
unset PGPASSWORD

export USERS_POSTGRES_DSN="postgres://userkit:$password@127.0.0.1:$pport,127.0.0.1:$sport/userkit_test?sslmode=disable&target_session_attrs=read-write"
export USERS_PG_PRIMARY_DSN="postgres://userkit:$password@127.0.0.1:$pport/userkit_test?sslmode=disable"
export USERS_PG_STANDBY_DSN="postgres://userkit:$password@127.0.0.1:$sport/userkit_test?sslmode=disable"
export USERS_PG_KILL_PRIMARY=$tmp/kill-primary
export USERS_PG_PROMOTE=$tmp/promote
cd "$repo/postgres"
[ "$#" -gt 0 ] || { log "no command given"; exit 2; }
log "running: $*"
"$@"

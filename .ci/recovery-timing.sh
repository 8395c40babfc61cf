#!/usr/bin/env bash
# Measures the follow-up timing of examples/httpapi's account-recovery
# endpoints after a known and an unknown email (internal/recoverytiming), with
# the server pinned to one core and the client to another, as a remote client
# sees a one-core server. Arguments go to internal/recoverytiming (-pairs,
# -gaps, -band). Needs taskset (util-linux) and two cores.
#
#   bash .ci/recovery-timing.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
srv=
cleanup() {
	if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$repo"
go build -o "$tmp/httpapi" ./examples/httpapi
go build -o "$tmp/timing" ./internal/recoverytiming
export USERS_ADMIN_EMAIL=admin@example.com USERS_ADMIN_PASSWORD="a long admin password for timing"
taskset -c 0 "$tmp/httpapi" -db "$tmp/users.db" -addr 127.0.0.1:0 -bcrypt-cost 10 >"$tmp/out" 2>/dev/null &
srv=$!
for _ in $(seq 100); do
	grep -q '^listening on ' "$tmp/out" 2>/dev/null && break
	sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$tmp/out")
[ -n "$url" ] || { echo "recovery-timing.sh: the server did not start" >&2; exit 1; }
echo "recovery-timing.sh: server $url on CPU 0 (pid $srv), client on CPU 1" >&2
taskset -c 1 "$tmp/timing" -url "$url" "$@"

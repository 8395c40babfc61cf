#!/usr/bin/env bash
# Smoke test of examples/quickstart, for CI: run it twice in a row in a fresh,
# empty folder with its defaults (users.db in the current folder). The first run
# must create the store and the admin, the second must find them, and both must
# log in, validate the token, list the users and log out.
# Run from anywhere: examples/quickstart/smoke.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "smoke: FAIL: $*" >&2
	exit 1
}

unset USERS_ADMIN_PASSWORD # the demo password, whatever the environment
go build -o "$tmp/quickstart" ./examples/quickstart
mkdir "$tmp/fresh"
cd "$tmp/fresh"

# expect FILE TEXT...: FILE has a line containing each TEXT.
expect() {
	local f=$1 s
	shift
	for s in "$@"; do
		grep -qF -- "$s" "$f" || { cat "$f" >&2; fail "run output lacks: $s"; }
	done
}

"$tmp/quickstart" >"$tmp/run1" 2>&1 || { cat "$tmp/run1" >&2; fail "the first run failed"; }
cat "$tmp/run1"
expect "$tmp/run1" "created the store users.db" "created the admin admin@example.com" \
	"logged in as admin@example.com" "the token is valid: user admin@example.com, role admin" \
	"1 user(s):" "logged out; the token no longer validates"
[[ -f users.db ]] || fail "no users.db in the current folder"

"$tmp/quickstart" >"$tmp/run2" 2>&1 || { cat "$tmp/run2" >&2; fail "the second run failed"; }
cat "$tmp/run2"
expect "$tmp/run2" "opened the store users.db" "found 1 admin(s); not creating one" \
	"logged in as admin@example.com" "1 user(s):" "logged out; the token no longer validates"
[[ $(ls) == users.db ]] || fail "the runs left more than users.db behind: $(ls)"

# No password from a flag: ps would show it.
if "$tmp/quickstart" -password 'a password in ps' >"$tmp/run3" 2>&1; then
	fail "-password was accepted"
fi
expect "$tmp/run3" "flag provided but not defined: -password"

echo "smoke: OK"

#!/usr/bin/env bash
# Smoke test of examples/webapp, for CI: build the site, check that the first
# admin's password is taken only from the environment (the -admin-password
# flag is refused, and without $USERS_ADMIN_PASSWORD or a terminal it will not
# start), start it with -dev on a free loopback port and a temporary bbolt
# file, check that the password is not in the process's arguments, sign the
# admin in and ask for an account with curl, check that the passkey script is
# served as JavaScript and allowed by the CSP, then stop it with SIGTERM and
# require a clean exit. The browser flows are in browser_test.go.
# Needs bash, go, curl, grep, sed.
# Run from anywhere: examples/webapp/smoke.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "smoke: FAIL: $*" >&2
	if [[ -f $tmp/log ]]; then
		echo "--- server log:" >&2
		cat "$tmp/log" >&2
	fi
	exit 1
}

admin_email=admin@example.com
admin_password='webapp smoke admin password'

go build -o "$tmp/webapp" ./examples/webapp

if "$tmp/webapp" -dev -db "$tmp/refused.db" -addr 127.0.0.1:0 -admin-email "$admin_email" \
	-admin-password "$admin_password" </dev/null >/dev/null 2>>"$tmp/log"; then
	fail "-admin-password was accepted"
fi
if USERS_ADMIN_PASSWORD= "$tmp/webapp" -dev -db "$tmp/refused.db" -addr 127.0.0.1:0 \
	-admin-email "$admin_email" </dev/null >/dev/null 2>"$tmp/err"; then
	fail "an admin was to be created with no password"
fi
grep -q 'USERS_ADMIN_PASSWORD' "$tmp/err" || fail "the refusal does not name \$USERS_ADMIN_PASSWORD: $(cat "$tmp/err")"
echo "smoke: no admin password from a flag or a pipe"

: >"$tmp/out"
USERS_ADMIN_PASSWORD=$admin_password USERS_MFA_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n') \
	"$tmp/webapp" -dev -db "$tmp/webapp.db" -addr 127.0.0.1:0 -bcrypt-cost 10 \
	-admin-email "$admin_email" >"$tmp/out" 2>>"$tmp/log" &
pid=$!
base=
for _ in $(seq 100); do
	base=$(sed -n 's/^listening on //p' "$tmp/out")
	[[ -n $base ]] && break
	kill -0 "$pid" 2>/dev/null || fail "the site exited before listening"
	sleep 0.1
done
[[ -n $base ]] || fail "the site did not print its address within 10s"
echo "smoke: site at $base (pid $pid)"
[[ -r /proc/$pid/cmdline ]] || fail "cannot read /proc/$pid/cmdline"
if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$admin_password"; then
	fail "the admin password is in the process's arguments"
fi

jar=$tmp/cookies
# csrf PATH: the form token of the page at PATH, with the cookie jar.
csrf() {
	curl -sS -b "$jar" -c "$jar" "$base$1" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1
}
# post PAGE PATH WANT_STATUS WANT_LOCATION FIELD...: post the form of PAGE
# to PATH; fields are name=value.
post() {
	local page=$1 path=$2 want=$3 location=$4 token args=() out
	shift 4
	token=$(csrf "$page")
	[[ -n $token ]] || fail "no form token on $page"
	args=(--data-urlencode "csrf=$token")
	for f in "$@"; do args+=(--data-urlencode "$f"); done
	out=$(curl -sS -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' "${args[@]}" "$base$path")
	[[ $out == "$want $base$location" ]] || fail "POST $path: $out, want $want $base$location"
	echo "smoke: POST $path -> $out"
}

# The passkey script is served as JavaScript (nosniff would refuse it
# otherwise), and the CSP lets the site's own scripts run.
ct=$(curl -sS -o /dev/null -w '%{content_type}' "$base/static/passkey.js")
[[ $ct == text/javascript* ]] || fail "static/passkey.js is served as $ct"
headers=$(curl -sS -D - -o /dev/null "$base/signin")
grep -qi "^content-security-policy:.*script-src 'self';" <<<"$headers" || fail "the CSP does not allow the site's own script"
echo "smoke: static/passkey.js served as $ct, allowed by the CSP"

post /signin /signin 303 /account "identifier=$admin_email" "password=$admin_password"
# Read the whole page first: grep -q stops at the first match, and curl,
# still writing, would fail the pipe.
account=$(curl -sS -b "$jar" "$base/account")
grep -qF "$admin_email" <<<"$account" || fail "the account page does not show the admin"
post /account /signout 303 /
post /signup /signup 303 /check-email?for=signup "email=new@example.com"
for _ in $(seq 100); do
	grep -q 'to=new@example.com subject="Create your account"' "$tmp/log" && break
	sleep 0.1
done
grep -q 'to=new@example.com subject="Create your account"' "$tmp/log" || fail "no sign-up link mailed"
echo "smoke: sign-up link mailed"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[[ $rc == 0 ]] || fail "the site exited with status $rc after SIGTERM"
echo "smoke: OK"

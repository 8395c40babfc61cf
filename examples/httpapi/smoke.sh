#!/usr/bin/env bash
# Smoke test of examples/httpapi, for CI: build the server, start it on a free
# loopback port with a temporary bbolt file, drive it with curl through
# create -> login -> list -> patch -> passwords -> account and preferences ->
# sign-up -> devices and the audit log -> second factor -> delete checking
# status codes and bodies, stop it with SIGTERM and require a clean exit; then
# start it again on the same file, behind a "trusted proxy", to check that the
# data and the second factor survived, and that passkeys turned on answer. TOTP codes come from
# internal/totpcode (pquerna/otp, as an authenticator app computes them).
# Needs bash, go, curl, grep, sed.
# Run from anywhere: examples/httpapi/smoke.sh
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
admin_password='smoke test admin password'
# The key that seals TOTP secrets: the same on both starts, or the secrets
# could not be opened after the restart.
mfa_key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')

# start [FLAG...]: run the server in the background and set base to its URL.
start() {
	: >"$tmp/out"
	USERS_ADMIN_PASSWORD=$admin_password USERS_MFA_KEY=$mfa_key "$tmp/httpapi" -db "$tmp/users.db" -addr 127.0.0.1:0 \
		-admin-email "$admin_email" -bcrypt-cost 10 -signup "$@" >"$tmp/out" 2>>"$tmp/log" &
	pid=$!
	base=
	for _ in $(seq 100); do
		base=$(sed -n 's/^listening on //p' "$tmp/out")
		[[ -n $base ]] && break
		kill -0 "$pid" 2>/dev/null || fail "the server exited before listening"
		sleep 0.1
	done
	[[ -n $base ]] || fail "the server did not print its address within 10s"
	echo "smoke: server at $base (pid $pid)"
}

# stop: SIGTERM, then require exit status 0 within 20s.
stop() {
	kill -TERM "$pid"
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "the server did not stop within 20s of SIGTERM"
	local rc=0
	wait "$pid" || rc=$?
	pid=
	[[ $rc == 0 ]] || fail "the server exited with status $rc after SIGTERM"
	grep -q 'msg=stopped' "$tmp/log" || fail "the server did not log a clean stop"
	echo "smoke: server stopped cleanly"
}

# req METHOD PATH TOKEN BODY WANT_STATUS: one request; sets body. The curl
# arguments in the array extra (say, -A AGENT) are added.
extra=()
req() {
	local method=$1 path=$2 token=$3 data=$4 want=$5 status
	local args=(-sS -o "$tmp/body" -w '%{http_code}' -X "$method" "${extra[@]}")
	[[ -n $token ]] && args+=(-H "Authorization: Bearer $token")
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	status=$(curl "${args[@]}" "$base$path") || fail "curl $method $path failed"
	body=$(<"$tmp/body")
	[[ $status == "$want" ]] || fail "$method $path: status $status, want $want; body: $body"
	echo "smoke: $method $path -> $status"
}

# has TEXT...: the last body contains every TEXT.
has() {
	local s
	for s in "$@"; do
		[[ $body == *"$s"* ]] || fail "body lacks $s: $body"
	done
}

# field KEY: the first string value of "KEY" in the last body.
field() {
	grep -o "\"$1\":\"[^\"]*\"" <<<"$body" | head -n 1 | cut -d '"' -f 4
}

# mailed KIND TO: wait for the server to log a "would email" line of KIND to TO
# and set token to its token (empty for a mail without one).
mailed() {
	local line=
	for _ in $(seq 100); do
		line=$(grep 'would email' "$tmp/log" | grep " to=$2 " | grep " kind=$1" | tail -n 1 || true)
		[[ -n $line ]] && break
		sleep 0.1
	done
	[[ -n $line ]] || fail "no $1 mail to $2 within 10s"
	token=$(sed -n 's/.* token=\([^ "]*\).*/\1/p' <<<"$line")
	echo "smoke: mailed $1 to $2"
}

# code SECRET [-offset D | -wrong]: a TOTP code (see internal/totpcode).
code() {
	"$tmp/totpcode" "${@:2}" "$1"
}

# recovery_codes: the recovery codes in the last body, into the array codes.
recovery_codes() {
	mapfile -t codes < <(grep -o '"[0-9a-z]\{4\}-[0-9a-z]\{4\}-[0-9a-z]\{4\}-[0-9a-z]\{4\}"' <<<"$body" | tr -d '"')
	[[ ${#codes[@]} == 10 ]] || fail "want 10 recovery codes: $body"
}

go build -o "$tmp/httpapi" ./examples/httpapi
go build -o "$tmp/totpcode" ./examples/httpapi/internal/totpcode

# The admin's password is never a flag (ps shows flags): the flag is refused,
# and with no $USERS_ADMIN_PASSWORD and no terminal an empty store will not start.
if "$tmp/httpapi" -db "$tmp/refused.db" -addr 127.0.0.1:0 -admin-email "$admin_email" \
	-admin-password "$admin_password" </dev/null >/dev/null 2>>"$tmp/log"; then
	fail "-admin-password was accepted"
fi
if "$tmp/httpapi" -db "$tmp/refused.db" -addr 127.0.0.1:0 -admin-email "$admin_email" </dev/null >/dev/null 2>"$tmp/err"; then
	fail "an empty store started with no admin password"
fi
grep -q 'USERS_ADMIN_PASSWORD' "$tmp/err" || fail "the refusal does not name \$USERS_ADMIN_PASSWORD: $(cat "$tmp/err")"

start
# Nothing in the process's arguments holds the password.
[[ -r /proc/$pid/cmdline ]] || fail "cannot read /proc/$pid/cmdline"
if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$admin_password"; then
	fail "the admin password is in the process's arguments"
fi

req POST /v1/auth/login "" "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" 200
has '"success":true' '"token_type":"Bearer"' '"role":"admin"'
admin=$(field token)
[[ -n $admin ]] || fail "no token in the login answer"

# Create (the document's request), and its 409 and 400.
req POST /v1/users "$admin" '{"name":"Jane Smith","email":"jane@example.com","role":"user","password":"secure_password_123"}' 201
has '"success":true' '"name":"Jane Smith"' '"email":"jane@example.com"' '"role":"user"' '"status":"active"' '"message":"User created successfully"'
jane=$(field id)
[[ -n $jane ]] || fail "no id in the create answer"
req POST /v1/users "$admin" '{"name":"Jane Again","email":"jane@example.com","password":"secure_password_123"}' 409
has '{"success":false,"error":{"code":"duplicate_email","message":"A user with this email already exists"}}'
req POST /v1/users "$admin" '{"email":"not-an-email","password":"secure_password_123"}' 400
has '"code":"invalid_request"' '"field":"email"'
req POST /v1/users "$admin" '{"email":' 400
has '"code":"invalid_request"'

# Login as the new user.
req POST /v1/auth/login "" '{"email":"jane@example.com","password":"secure_password_123"}' 200
jane_token=$(field token)
req GET /v1/me "$jane_token" "" 200
has "\"id\":\"$jane\""

# List, as the document's example request, and the 401/403 answers.
req GET '/v1/users?page=1&limit=20&role=user' "$admin" "" 200
has "\"id\":\"$jane\"" '"pagination":{"page":1,"limit":20,"total":1,"pages":1}'
req GET '/v1/users?limit=101' "$admin" "" 400
has '"field":"limit"'
req GET /v1/users "$jane_token" "" 403
has '"code":"forbidden"'
req GET /v1/users "" "" 401
has '"code":"invalid_token"'

# Patch: the user herself, then the admin (the document's request).
req PATCH "/v1/users/$jane" "$jane_token" '{"name":"Jane Doe"}' 200
has '"name":"Jane Doe"' '"message":"User updated successfully"'
req PATCH "/v1/users/$jane" "$admin" '{"name":"John Smith","role":"admin"}' 200
has '"name":"John Smith"' '"role":"admin"'
req GET "/v1/users/$jane" "$admin" "" 200
has '"name":"John Smith"' '"role":"admin"'

# Passwords: the confirmation is checked by the server; an admin sets one
# without the old one. Both end the user's sessions.
req PATCH "/v1/users/$jane" "$admin" '{"role":"user"}' 200
req PUT /v1/me/password "$jane_token" '{"current_password":"secure_password_123","new_password":"jane changed it","confirm_password":"jane changed it!"}' 400
has '"field":"confirm_password"'
req PUT /v1/me/password "$jane_token" '{"current_password":"secure_password_123","new_password":"jane changed it","confirm_password":"jane changed it"}' 200
req GET /v1/me "$jane_token" "" 401
req PUT "/v1/users/$jane/password" "$admin" '{"new_password":"the admin set it","confirm_password":"the admin set it"}' 200
req POST /v1/auth/login "" '{"email":"jane@example.com","password":"jane changed it"}' 401
req POST /v1/auth/login "" '{"email":"jane@example.com","password":"the admin set it"}' 200
jane_token=$(field token)

# account_id and preferences: written on create and patch, read back, and
# account_id filters the list.
req POST /v1/users "$admin" '{"email":"ann@acme.example","account_id":"acme","preferences":{"theme":"dark"},"password":"secure_password_123"}' 201
has '"account_id":"acme"' '"preferences":{"theme":"dark"}'
ann=$(field id)
req GET '/v1/users?account_id=acme' "$admin" "" 200
has "\"id\":\"$ann\"" '"total":1,'
req PATCH "/v1/users/$jane" "$jane_token" '{"preferences":{"lang":"fr"}}' 200
has '"preferences":{"lang":"fr"}'
req PATCH "/v1/users/$jane" "$jane_token" '{"account_id":"acme"}' 403

# Sign-up (on with -signup): the same answer for a new and a taken email; the
# new one is mailed a link that sets the password, the taken one a notice.
req POST /v1/auth/signup "" '{"email":"sam@example.com"}' 202
signup_body=$body
mailed signup sam@example.com
sam_token=$token
[[ -n $sam_token ]] || fail "the signup mail has no token"
req POST /v1/auth/signup "" "{\"email\":\"$admin_email\"}" 202
[[ $body == "$signup_body" ]] || fail "sign-up answers differ: $body vs $signup_body"
mailed account-exists "$admin_email"
req POST /v1/auth/accept-invite "" "{\"token\":\"$sam_token\",\"password\":\"sam chose this one\"}" 200
has '"email":"sam@example.com"' '"status":"active"' '"email_verified":true'
req POST /v1/auth/login "" '{"email":"sam@example.com","password":"sam chose this one"}' 200

# Devices: each session shows the User-Agent and address it logged in from.
# This server trusts no proxy, so a client's own X-Forwarded-For is ignored.
max_login='{"email":"max@example.com","password":"max password 1234"}'
req POST /v1/users "$admin" '{"email":"max@example.com","password":"max password 1234"}' 201
max=$(field id)
extra=(-A 'SmokePhone/1.0' -H 'X-Forwarded-For: 203.0.113.7')
req POST /v1/auth/login "" "$max_login" 200
max_phone=$(field token)
extra=(-A 'SmokeLaptop/2.0')
req POST /v1/auth/login "" "$max_login" 200
max_laptop=$(field token)
req GET /v1/me/sessions "$max_laptop" "" 200
has '"current":true,"ip":"127.0.0.1","user_agent":"SmokeLaptop/2.0"' '"current":false,"ip":"127.0.0.1","user_agent":"SmokePhone/1.0"' '"methods":["password"]'
[[ $body != *203.0.113.7* ]] || fail "an untrusted X-Forwarded-For was recorded: $body"
phone_id=$(sed -n 's/.*"id":"\([^"]*\)","current":false.*/\1/p' <<<"$body")
[[ -n $phone_id ]] || fail "no id for the phone's session: $body"
req DELETE "/v1/me/sessions/$phone_id" "$max_laptop" "" 200
req GET /v1/me "$max_phone" "" 401
req DELETE "/v1/me/sessions/$phone_id" "$max_laptop" "" 404
req POST /v1/auth/login "" "$max_login" 200
max_tablet=$(field token)
req POST /v1/me/sessions/revoke-others "$max_laptop" "" 200
has '"revoked":1'
req GET /v1/me "$max_tablet" "" 401
req GET /v1/me/sessions "$max_laptop" "" 200
has '"current":true'
[[ $body != *'"current":false'* ]] || fail "revoke-others left another session: $body"
extra=()

# The audit log: the logins with their client, a role change by the admin,
# filters by type and time, cursor paging; admins only.
req PUT "/v1/users/$max/role" "$admin" '{"role":"viewer"}' 200
req GET "/v1/users/$max/audit?type=user.role_changed" "$admin" "" 200
has '"type":"user.role_changed"' '"role_from":"user"' '"role_to":"viewer"' '"actor_id":"'
req GET "/v1/users/$max/audit?type=login.succeeded,session.revoked_all" "$admin" "" 200
has '"type":"login.succeeded"' '"user_agent":"SmokeLaptop/2.0"' '"ip":"127.0.0.1"' '"type":"session.revoked_all"'
req GET "/v1/users/$max/audit?limit=1" "$admin" "" 200
has '"type":"user.role_changed"' '"next":"'
next=$(field next)
req GET "/v1/users/$max/audit?limit=1&before=$next" "$admin" "" 200
[[ $body != *user.role_changed* ]] || fail "the second page repeats the first: $body"
req GET "/v1/users/$max/audit?since=2999-01-01T00:00:00Z" "$admin" "" 200
has '"entries":[]'
req GET "/v1/users/$max/audit?since=yesterday" "$admin" "" 400
has '"field":"since"'
req GET "/v1/users/$max/audit" "$max_laptop" "" 403
req PUT "/v1/users/$max/role" "$admin" '{"role":"user"}' 200

# Second factor. Enrolment: secret, otpauth URI, QR code PNG; a code confirms.
req GET /v1/me/mfa "$max_laptop" "" 200
has '"enabled":false'
req POST /v1/me/mfa/totp "$max_laptop" "" 200
has '"otpauth_uri":"otpauth://totp/' '"qr_code":"data:image/png;base64,iVBORw0KGgo'
secret=$(field secret)
req POST /v1/me/mfa/totp/confirm "$max_laptop" "{\"code\":\"$(code "$secret" -wrong)\"}" 401
has '"code":"invalid_code"'
used=$(code "$secret")
req POST /v1/me/mfa/totp/confirm "$max_laptop" "{\"code\":\"$used\"}" 200
recovery_codes
max_codes=("${codes[@]}")
req GET /v1/me/mfa "$max_laptop" "" 200
has '"enabled":true' '"recovery_codes_left":10'

# Login: 401 mfa_required with the challenge; the code that confirmed the
# enrolment is used up; the next step's code completes the login.
req POST /v1/auth/login "" "$max_login" 401
has '"code":"mfa_required"' '"challenge":{"token":"' '"methods":["totp","recovery_code"]' '"expires_at":"'
challenge=$(field token)
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"$used\"}" 401
has '"code":"invalid_code"'
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"$(code "$secret" -offset 30s)\"}" 200
has '"token_type":"Bearer"' '"email":"max@example.com"'
max_mfa=$(field token)
req GET /v1/me/sessions "$max_mfa" "" 200
has '"methods":["password","totp"],"second_factor_at":"'
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"$(code "$secret" -offset 30s)\"}" 401
has '"code":"invalid_token"'

# Five wrong codes kill a challenge.
req POST /v1/auth/login "" "$max_login" 401
challenge=$(field token)
wrong=$(code "$secret" -wrong)
for _ in 1 2 3 4 5; do
	req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"$wrong\"}" 401
	has '"code":"invalid_code"'
done
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"${max_codes[0]}\"}" 401
has '"code":"invalid_token"'

# A recovery code works once.
req POST /v1/auth/login "" "$max_login" 401
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$(field token)\",\"code\":\"${max_codes[0]}\"}" 200
req POST /v1/auth/login "" "$max_login" 401
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$(field token)\",\"code\":\"${max_codes[0]}\"}" 401
has '"code":"invalid_code"'
req GET /v1/me/mfa "$max_mfa" "" 200
has '"recovery_codes_left":9'

# Magic links ask for the second factor too.
req POST /v1/auth/magic-link "" '{"email":"max@example.com"}' 202
mailed magic-link max@example.com
req POST /v1/auth/magic-link/confirm "" "{\"token\":\"$token\"}" 401
has '"code":"mfa_required"'
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$(field token)\",\"code\":\"${max_codes[1]}\"}" 200

# New recovery codes need a session that proved a second factor lately: the
# laptop's (password only) steps up with a recovery code first.
req POST /v1/me/mfa/recovery-codes "$max_laptop" "" 403
has '"code":"second_factor_required"'
req POST /v1/me/mfa/step-up "$max_laptop" "{\"code\":\"${max_codes[2]}\"}" 200
has '"second_factor_at":"' 'recovery_code'
req POST /v1/me/mfa/recovery-codes "$max_laptop" "" 200
recovery_codes
req POST /v1/auth/login "" "$max_login" 401
challenge=$(field token)
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"${max_codes[3]}\"}" 401
has '"code":"invalid_code"'
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$challenge\",\"code\":\"${codes[0]}\"}" 200

# Disabling needs the password (or a code); then the password alone logs in.
req POST /v1/me/mfa/disable "$max_laptop" '{"password":"not the password"}' 401
req POST /v1/me/mfa/disable "$max_laptop" '{"password":"max password 1234"}' 200
req POST /v1/auth/login "" "$max_login" 200

# The admin reset: only by an admin who proved their own second factor.
req POST /v1/me/mfa/totp "$max_laptop" "" 200
max_secret=$(field secret)
req POST /v1/me/mfa/totp/confirm "$max_laptop" "{\"code\":\"$(code "$max_secret")\"}" 200
req POST /v1/auth/login "" "$max_login" 401
req DELETE "/v1/users/$max/mfa" "$admin" "" 403
has '"code":"second_factor_required"'
req POST /v1/me/mfa/totp "$admin" "" 200
admin_secret=$(field secret)
req POST /v1/me/mfa/totp/confirm "$admin" "{\"code\":\"$(code "$admin_secret")\"}" 200
recovery_codes
admin_codes=("${codes[@]}")
req POST /v1/me/mfa/step-up "$admin" "{\"code\":\"$(code "$admin_secret" -offset 30s)\"}" 200
req DELETE "/v1/users/$max/mfa" "$admin" "" 200
req POST /v1/auth/login "" "$max_login" 200
req GET "/v1/users/$max/audit?type=mfa.reset,mfa.disabled,mfa.enabled" "$admin" "" 200
has '"type":"mfa.reset"' '"type":"mfa.disabled"' '"type":"mfa.enabled"'

# Delete, then 404 and a dead token.
req DELETE "/v1/users/$jane" "$admin" "" 200
[[ $body == '{"success":true,"message":"User deleted successfully"}' ]] || fail "delete answered $body"
req GET "/v1/users/$jane" "$admin" "" 404
has '{"success":false,"error":{"code":"not_found","message":"User not found"}}'
req GET /v1/me "$jane_token" "" 401

stop

# Again on the same file, now behind a trusted "proxy" (curl on loopback) and
# with passkeys: the admin is still there, not created twice, and still has a
# second factor, and the address the proxy forwards is the client's.
start -trusted-proxy 127.0.0.1 -passkey-origin http://localhost:3000
extra=(-H 'X-Forwarded-For: 198.51.100.1, 203.0.113.7')
req POST /v1/auth/login "" "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" 401
has '"code":"mfa_required"'
req POST /v1/auth/login/mfa "" "{\"challenge\":\"$(field token)\",\"code\":\"${admin_codes[0]}\"}" 200
admin=$(field token)
extra=()
req GET /v1/me/sessions "$admin" "" 200
has '"current":true,"ip":"203.0.113.7"'
req GET /v1/users "$admin" "" 200
has '"total":4,' "\"email\":\"$admin_email\"" '"email":"ann@acme.example"' '"email":"sam@example.com"' '"email":"max@example.com"'

# Passkeys were off; on now (-passkey-origin), a sign-in begins with the
# options for the browser, bound to the front end's host.
req POST /v1/auth/passkey/begin "" "" 200
has '"publicKey":{' '"challenge":"' '"rpId":"localhost"'
req GET /v1/me/passkeys "$admin" "" 200
has '"data":[]'
stop
[[ $(grep -c 'created the first admin' "$tmp/log") == 1 ]] || fail "the first admin was created more than once"

echo "smoke: OK"

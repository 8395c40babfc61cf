#!/usr/bin/env bash
# Schema compatibility of the bbolt store across versions, with real binaries:
# examples/quickstart built from commit 4459f78 (bbolt schema version 1) and from
# this tree (version 2), run on one file in turn.
#   1. the old binary creates users.db (version 1);
#   2. the new binary opens it, which migrates it to version 2, and logs in;
#   3. the old binary must now refuse the file with its "schema too new" error
#      (ErrSchemaTooNew: "written by a newer version of this package");
#   4. the new binary still opens it.
# Needs the repository's history (a full clone). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
old=4459f78
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "bolt-compat: FAIL: $*" >&2
	exit 1
}

mkdir "$tmp/old" "$tmp/run"
git archive "$old" | tar -x -C "$tmp/old"
(cd "$tmp/old" && go build -o "$tmp/quickstart-old" ./examples/quickstart)
go build -o "$tmp/quickstart-new" ./examples/quickstart
unset USERS_ADMIN_PASSWORD
cd "$tmp/run"

"$tmp/quickstart-old" >"$tmp/out1" 2>&1 || { cat "$tmp/out1" >&2; fail "the old binary failed on a new file"; }
"$tmp/quickstart-new" >"$tmp/out2" 2>&1 || { cat "$tmp/out2" >&2; fail "the new binary failed on the old binary's file"; }
grep -qF "logged in as admin@example.com" "$tmp/out2" || { cat "$tmp/out2" >&2; fail "the new binary did not log in"; }
if "$tmp/quickstart-old" >"$tmp/out3" 2>&1; then
	cat "$tmp/out3" >&2
	fail "the old binary opened a file the new one had written"
fi
grep -qF "written by a newer version of this package" "$tmp/out3" || { cat "$tmp/out3" >&2; fail "the old binary failed, but not with ErrSchemaTooNew"; }
"$tmp/quickstart-new" >"$tmp/out4" 2>&1 || { cat "$tmp/out4" >&2; fail "the new binary failed on its own file"; }
echo "old binary's refusal: $(grep -F 'newer version' "$tmp/out3" | head -1)"
echo "bolt-compat: OK"

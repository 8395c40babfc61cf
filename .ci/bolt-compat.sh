#!/usr/bin/env bash
# Schema compatibility of the bbolt store across versions, with real binaries:
# examples/quickstart built from commit 4459f78 (bbolt schema version 1), from
# commit 1d59d5b (version 2), from commit abf1ec3 (version 3), from commit
# be42d99 (version 4), from commit 7b8ee86 (version 5), from commit cf3a665
# (version 7), from commit a1da1d1 (version 8), from commit 5ae29a4 (version 9,
# the last with every bucket under userkit.users) and from this tree
# (version 10). For each old binary, run on one file in turn:
#   1. the old binary creates users.db (its version);
#   2. the new binary opens it, which migrates it to version 10, and logs in;
#   3. the old binary must now refuse the file with its "schema too new" error
#      (ErrSchemaTooNew: "written by a newer version of this package");
#   4. the new binary still opens it.
# Needs the repository's history (a full clone). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "bolt-compat: FAIL: $*" >&2
	exit 1
}

go build -o "$tmp/quickstart-new" ./examples/quickstart
unset USERS_ADMIN_PASSWORD

# check OLD_COMMIT SCHEMA_VERSION runs steps 1 to 4 with the binary of OLD_COMMIT.
check() {
	local old=$1 version=$2
	local src=$tmp/src-$old run=$tmp/run-$old bin=$tmp/quickstart-$old
	mkdir "$src" "$run"
	git archive "$old" | tar -x -C "$src"
	(cd "$src" && go build -o "$bin" ./examples/quickstart)
	cd "$run"
	"$bin" >"$run/out1" 2>&1 || { cat "$run/out1" >&2; fail "the version $version binary failed on a new file"; }
	"$tmp/quickstart-new" >"$run/out2" 2>&1 || { cat "$run/out2" >&2; fail "the new binary failed on the version $version binary's file"; }
	grep -qF "logged in as admin@example.com" "$run/out2" || { cat "$run/out2" >&2; fail "the new binary did not log in on the version $version file"; }
	if "$bin" >"$run/out3" 2>&1; then
		cat "$run/out3" >&2
		fail "the version $version binary opened a file the new one had written"
	fi
	grep -qF "written by a newer version of this package" "$run/out3" || { cat "$run/out3" >&2; fail "the version $version binary failed, but not with ErrSchemaTooNew"; }
	"$tmp/quickstart-new" >"$run/out4" 2>&1 || { cat "$run/out4" >&2; fail "the new binary failed on its own file"; }
	echo "schema $version binary's refusal: $(grep -F 'newer version' "$run/out3" | head -1)"
	cd - >/dev/null
}

check 4459f78 1
check 1d59d5b 2
check abf1ec3 3
check be42d99 4
check 7b8ee86 5
check cf3a665 7
check a1da1d1 8
check 5ae29a4 9
echo "bolt-compat: OK"

#!/usr/bin/env bash
# Proves that the postgres and otel modules resolve as a consumer would resolve
# them: with no go.work (GOWORK=off), no replace directive, and
# github.com/userkit/users fetched at the version each go.mod requires from a
# module proxy.
#
#   bash .ci/consumer.sh
#
# The proxy is a local directory (GOPROXY=file://...) in the layout the go
# command reads (<module>/@v/list, .info, .mod, .zip). It holds this commit's
# root module, zipped by git archive under the required version, in front of
# the module cache's download directory for every third-party module (filled
# first with go mod download). So the build sees the root module as of this
# commit, under the version name a release would give it (see RELEASING.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { printf 'consumer.sh: %s\n' "$*" >&2; }

module=github.com/userkit/users
version=$(awk -v m="$module" '$1 == m { print $2 }' postgres/go.mod)
for sub in postgres otel; do
	if grep -q '^[[:space:]]*replace\b' $sub/go.mod; then
		log "$sub/go.mod has a replace directive: consumers ignore it"
		exit 1
	fi
	v=$(awk -v m="$module" '$1 == m { print $2 }' $sub/go.mod)
	if [[ ! $v =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		log "$sub/go.mod requires $module at '${v}', not a release version"
		exit 1
	fi
	if [[ $v != "$version" ]]; then
		log "$sub/go.mod requires $module $v, postgres/go.mod $version: require one release"
		exit 1
	fi
done

tmp=$(mktemp -d /tmp/userkit-consumer.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

# Third-party modules of both modules (go.work puts both in the build list), in
# the shared module cache.
go mod download
cache=$(go env GOMODCACHE)/cache/download

# This repository's root module under the required version. A module zip holds
# the module's files under "<module>@<version>/" and never a nested module, so
# postgres/ and otel/ stay out.
proxy=$tmp/proxy/$module/@v
mkdir -p "$proxy"
git archive --format=zip --prefix="$module@$version/" -o "$proxy/$version.zip" HEAD -- . ':(exclude)postgres' ':(exclude)otel'
cp go.mod "$proxy/$version.mod"
printf '{"Version":"%s","Time":"%s"}\n' "$version" "$(git log -1 --format=%cI HEAD)" >"$proxy/$version.info"
printf '%s\n' "$version" >"$proxy/list"

# Each module alone, outside the repository: ../ is not there to lean on.
export GOWORK=off GOFLAGS=-mod=mod GOMODCACHE=$tmp/modcache
export GOPROXY="file://$tmp/proxy,file://$cache" GONOSUMDB=$module
for sub in postgres otel; do
	cp -R "$repo/$sub" "$tmp/$sub"
	cd "$tmp/$sub"
	log "building $sub/ against $module $version from $GOPROXY"
	go build ./...
	go vet ./...
	if ! diff -u "$repo/$sub/go.mod" go.mod; then
		log "resolving as a consumer changed $sub/go.mod (above): run go mod tidy there with GOWORK=off"
		exit 1
	fi
	got=$(go list -m -f '{{.Version}}' "$module")
	[ "$got" = "$version" ] || { log "resolved $module $got, want $version"; exit 1; }
	log "$sub module resolves and builds with GOWORK=off and no replace ($module $got)"
done

#!/usr/bin/env bash
# Traefik, the ingress controller of the real-cluster tier's scenario 10,
# built from the Go module proxy (no registry serves its image here) and
# cached: prints the path of the static binary.
#
#   .ci/traefik.sh      # ~10 min cold on 2 cores, instant warm
#
# Traefik's go.mod has replace directives, so `go install module@version`
# refuses it: the module is downloaded (go mod download, checksummed by the
# Go checksum database), copied and built as the main module.
# Cache: ${TAU_TRAEFIK_CACHE:-~/.cache/tau-k8s/traefik}/<version>/traefik.
set -euo pipefail
VERSION=${TAU_TRAEFIK_VERSION:-v3.6.12}
CACHE=${TAU_TRAEFIK_CACHE:-$HOME/.cache/tau-k8s/traefik}/$VERSION
BIN=$CACHE/traefik
log() { printf '[traefik] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q "${VERSION#v}"; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || die "go is required to build Traefik $VERSION"
log "building Traefik $VERSION from the Go module proxy (cached in $CACHE)"
src=$(go mod download -json "github.com/traefik/traefik/v3@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
  die "go mod download github.com/traefik/traefik/v3@$VERSION"
W=$(mktemp -d "${TMPDIR:-/tmp}/tau-traefik.XXXXXX")
trap 'chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"' EXIT
cp -r "$src" "$W/src"
chmod -R u+w "$W/src"
mkdir -p "$CACHE"
(cd "$W/src" && CGO_ENABLED=0 nice go build -trimpath \
  -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${VERSION#v}" \
  -o "$W/traefik" ./cmd/traefik) || die "go build of Traefik $VERSION failed"
mv "$W/traefik" "$BIN"
"$BIN" version >&2
echo "$BIN"

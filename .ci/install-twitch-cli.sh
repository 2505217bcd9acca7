#!/usr/bin/env bash
# Install Twitch's own CLI (Go module github.com/twitchdev/twitch-cli), used
# as a test peer by TAU's end-to-end tests (signed webhooks, mock EventSub
# WebSocket server). See tests/twitch-cli/NOTES.md for how it behaves.
#
# Installs the pinned version with `go install` (Go module proxy) into a
# per-version cache directory; a no-op when the binary is already there.
# Needs: go, a C compiler (CGO_ENABLED=1: the CLI embeds sqlite).
#
# stdout: only the absolute path of the binary, on the last line.
# stderr: everything else (progress, go's own output).
#
# Exit codes:
#   0  binary available; its path is the last line of stdout
#   3  the Go module proxy refuses this module version ("not available"):
#      the CLI cannot be had on this machine. Callers should SKIP the
#      twitch-cli tests (loudly), not fail.
#   *  anything else: a real error (missing go/gcc, compile failure, ...)
#
# Environment:
#   TWITCH_CLI_BIN      use this existing binary instead (checked, echoed back)
#   TWITCH_CLI_VERSION  version to install (default below)
#   TAU_TOOLS_DIR       cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/tau-tools)
set -euo pipefail

version="${TWITCH_CLI_VERSION:-v1.1.25}"
module="github.com/twitchdev/twitch-cli"
tools_dir="${TAU_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tau-tools}"
prefix="${tools_dir}/twitch-cli-${version}"
bin_dir="${prefix}/bin"
bin="${bin_dir}/twitch-cli"

log() { printf 'install-twitch-cli: %s\n' "$*" >&2; }

if [[ -n "${TWITCH_CLI_BIN:-}" ]]; then
  if [[ -x "${TWITCH_CLI_BIN}" ]]; then
    log "using TWITCH_CLI_BIN=${TWITCH_CLI_BIN}"
    printf '%s\n' "${TWITCH_CLI_BIN}"
    exit 0
  fi
  log "error: TWITCH_CLI_BIN=${TWITCH_CLI_BIN} is not an executable file"
  exit 1
fi

if [[ -x "${bin}" ]]; then
  log "cached: ${bin}"
  printf '%s\n' "${bin}"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: 'go' not found on PATH"; exit 1; }
if ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
  log "error: a C compiler (${CC:-gcc}) is required (CGO_ENABLED=1, sqlite)"
  exit 1
fi

log "installing ${module}@${version} into ${bin_dir}"
start=$(date +%s)

# Build into a temp dir first and move into place, so an interrupted build
# never leaves a half-written binary that looks cached.
mkdir -p "${prefix}"
tmp_bin_dir="$(mktemp -d "${prefix}/.tmp-bin.XXXXXX")"
go_log="${tmp_bin_dir}.log"
trap 'rm -rf "${tmp_bin_dir}" "${go_log}"; rmdir "${prefix}" 2>/dev/null || true' EXIT

# Low priority: machines are small (2 cores) and may be compiling elsewhere.
set +e
GOBIN="${tmp_bin_dir}" CGO_ENABLED=1 \
  nice -n 19 go install "${module}@${version}" 2>&1 | tee "${go_log}" >&2
rc=${PIPESTATUS[0]}
set -e

if [[ ${rc} -ne 0 ]]; then
  if grep -qE '(403 Forbidden|410 Gone|404 Not Found|not available)' "${go_log}"; then
    log "error: the Go module proxy refused ${module}@${version} (see above)."
    log "twitch-cli cannot be installed on this machine; skip the tests that need it."
    exit 3
  fi
  log "error: go install failed (exit ${rc})"
  exit "${rc}"
fi

mkdir -p "${bin_dir}"
mv -f "${tmp_bin_dir}/twitch-cli" "${bin}"
log "installed in $(( $(date +%s) - start ))s: ${bin}"
printf '%s\n' "${bin}"

#!/usr/bin/env bash
# The dashboard's build is committed (relay/src/dashboard/dist, embedded by
# the relay with include_str!, so `cargo build` needs no Node). This script
# rebuilds it from dashboard/ with the locked dependencies and fails when the
# committed files differ (a stale build), like the CRD drift check. It also
# builds twice and compares, so the build stays deterministic.
#
# Needs Node 20.19+ and npm (registry reachable for `npm ci`).
# Usage: bash .ci/dashboard-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

dist=relay/src/dashboard/dist
# What is committed, before the build overwrites it (no git needed: CI runs
# from a mirror of the checkout, .ci/mirror.py).
committed="$(mktemp -d "${TMPDIR:-/tmp}/tau-dash-committed.XXXXXX")"
first="$(mktemp -d "${TMPDIR:-/tmp}/tau-dash-build.XXXXXX")"
trap 'rm -rf "$committed" "$first"' EXIT
cp -r "$dist/." "$committed/"

(cd dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
cp -r "$dist/." "$first/"
(cd dashboard && npm run --silent build)
if ! diff -r "$first" "$dist" >/dev/null; then
  echo "the dashboard build is not deterministic: two builds differ" >&2
  diff -r "$first" "$dist" | head -20 >&2
  exit 1
fi

for f in index.html app.js app.css; do
  [[ -s "$dist/$f" ]] || { echo "missing $dist/$f" >&2; exit 1; }
done
if [[ "$(ls "$dist" | wc -l)" -ne 3 ]]; then
  echo "expected exactly index.html, app.js, app.css in $dist:" >&2
  ls "$dist" >&2
  exit 1
fi

if ! diff -r "$committed" "$dist" >/dev/null; then
  echo "relay/src/dashboard/dist is stale (differs from a build of dashboard/):" >&2
  diff -rq "$committed" "$dist" >&2 || true
  echo "run 'bash .ci/dashboard-build.sh' (or 'cd dashboard && npm run build') and commit the result" >&2
  exit 1
fi
echo "dashboard build: up to date"

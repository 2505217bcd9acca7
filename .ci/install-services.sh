#!/usr/bin/env bash
# Install the server binaries that the `tau-test-services` crate
# (tests/services) starts as THROWAWAY instances: PostgreSQL (initdb, pg_ctl,
# postgres) and redis-server, from Debian packages.
#
# Only binaries are wanted. The packages' own system instances (the Debian
# cluster "15/main" on 5432, redis on 6379) are never used by tests; this
# script keeps apt's postinst from starting them (a policy-rc.d that denies
# service starts, installed only for the duration of apt-get when none
# exists) and warns if something already listens on a default port.
#
# Idempotent: when both binaries are found nothing is downloaded.
# Run directly (`bash .ci/install-services.sh`) or source it and call
# `install_services`. Needs root (or sudo) only when something is missing.
set -euo pipefail

# Echo the directory holding initdb + pg_ctl, the same way the crate looks:
# $TAU_PG_BINDIR, then PATH, then the highest /usr/lib/postgresql/<v>/bin.
services_pg_bindir() {
  local d
  if [[ -n "${TAU_PG_BINDIR:-}" && -x "${TAU_PG_BINDIR}/initdb" ]]; then
    echo "${TAU_PG_BINDIR}"; return 0
  fi
  if d="$(command -v initdb 2>/dev/null)" && [[ -x "$(dirname "$d")/pg_ctl" ]]; then
    dirname "$d"; return 0
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n 1 || true)"
  if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
    echo "$d"; return 0
  fi
  return 1
}

services_redis_bin() {
  if [[ -n "${TAU_REDIS_SERVER:-}" && -x "${TAU_REDIS_SERVER}" ]]; then
    echo "${TAU_REDIS_SERVER}"; return 0
  fi
  command -v redis-server 2>/dev/null || {
    [[ -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server
  }
}

install_services() {
  local log_prefix="install-services:" pkgs=() sudo=() start=$SECONDS
  local pg_dir redis_bin port

  if pg_dir="$(services_pg_bindir)"; then
    echo "$log_prefix postgres binaries present in $pg_dir"
  else
    pkgs+=(postgresql)
  fi
  if redis_bin="$(services_redis_bin)"; then
    echo "$log_prefix redis-server present at $redis_bin"
  else
    pkgs+=(redis-server)
  fi

  if [[ ${#pkgs[@]} -eq 0 ]]; then
    echo "$log_prefix nothing to install"
  else
    if [[ $EUID -ne 0 ]]; then
      command -v sudo >/dev/null || { echo "$log_prefix need root or sudo to install ${pkgs[*]}" >&2; return 1; }
      sudo=(sudo)
    fi
    # Deny service starts during the install so no system instance is left
    # running (only when no policy is in place already; removed afterwards).
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
      own_policy=1
      echo "$log_prefix installing a temporary $policy (exit 101: no service starts)"
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
      "${sudo[@]}" chmod 755 "$policy"
      # shellcheck disable=SC2064  # expand now: the trap must remove this file
      trap "${sudo[*]} rm -f $policy" EXIT
    fi
    echo "$log_prefix apt-get update"
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
    echo "$log_prefix apt-get install ${pkgs[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    if [[ $own_policy -eq 1 ]]; then "${sudo[@]}" rm -f "$policy"; trap - EXIT; fi
    pg_dir="$(services_pg_bindir)" || { echo "$log_prefix initdb still not found after install" >&2; return 1; }
    redis_bin="$(services_redis_bin)" || { echo "$log_prefix redis-server still not found after install" >&2; return 1; }
    echo "$log_prefix installed ${pkgs[*]} in $((SECONDS - start)) s"
  fi

  echo "$log_prefix postgres: $pg_dir ($("$pg_dir/initdb" --version))"
  echo "$log_prefix redis:    $redis_bin ($("$redis_bin" --version | cut -d' ' -f1-3))"
  id postgres >/dev/null 2>&1 && echo "$log_prefix user 'postgres' exists (tests run postgres as it when root)"
  for port in 5432 6379; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$log_prefix note: something listens on default port $port; tests never connect to it (they use free ports)"
    fi
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  install_services "$@"
fi

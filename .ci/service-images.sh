#!/usr/bin/env bash
# Stand-ins for the images of the chart's bundled Postgres and Redis
# (charts/tau: postgresql.enabled, redis.enabled), built from Debian's
# packages WITHOUT Docker or a registry (umoci + skopeo, as .ci/tau-image.sh
# builds TAU's), for clusters that cannot pull docker.io: the real-cluster
# tier imports them into its containerd under the exact references the
# chart renders, so the kubelet (imagePullPolicy IfNotPresent) never pulls.
# The chart's defaults stay the official images; nothing here changes them.
#
#   .ci/service-images.sh HELM [CHART]
#
# Prints one line per image, `REF TARBALL` (docker-archive tarballs that
# `ctr -n k8s.io images import` loads), postgres first. The references are
# read from `helm template` of CHART (default charts/tau) with both services
# enabled. Installs the postgresql and redis-server packages when missing
# (.ci/install-services.sh). Needs root (file ownership in the layers).
#
# What the images hold, and how they behave (like the official images for
# everything the chart uses):
#   postgres  Debian's PostgreSQL server binaries (postgres, initdb, pg_ctl,
#             pg_isready for the chart's probes, psql) with the shared
#             objects `ldd` lists, the server's extension libraries (no
#             LLVM JIT), its share dir and zoneinfo; /bin/sh (dash) for the
#             entrypoint; users postgres (uid/gid 70, as in the alpine image
#             the chart's securityContext expects) and nobody. Entrypoint
#             docker-entrypoint.sh, cmd `postgres`, user 70: on an empty
#             PGDATA (default /var/lib/postgresql/data) it runs initdb with
#             POSTGRES_USER (default postgres) as superuser and the password
#             from POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (required
#             unless POSTGRES_HOST_AUTH_METHOD=trust), encoding UTF8 and
#             locale C (no locale data needed), POSTGRES_INITDB_ARGS; creates
#             POSTGRES_DB (default: the user's name) in single-user mode;
#             listen_addresses '*'; pg_hba as the official image: local and
#             loopback trust, every other address
#             POSTGRES_HOST_AUTH_METHOD (default scram-sha-256). Then it
#             execs postgres. Stop signal SIGINT (fast shutdown), as upstream.
#   redis     Debian's redis-server and redis-cli with their shared objects,
#             /bin/sh; user redis (uid/gid 999), /data (owned by it, the
#             working directory). Entrypoint docker-entrypoint.sh, cmd
#             redis-server: a first argument that is an option or ends in
#             .conf is passed to redis-server (the chart gives the config
#             file), umask 0077, as upstream.
#
# Cache: ${TAU_K8S_CACHE:-${XDG_CACHE_HOME:-~/.cache}/tau-k8s}/service-images/<key>/,
# key = hash of this script, the image references and the versions of the
# Debian packages copied in; a warm run only renders the chart. Older keys
# are deleted when a new one is built.
set -euo pipefail
log() { printf '[service-images] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 HELM [CHART]"
HELM=$1
CHART=${2:-$HERE/../charts/tau}
for c in umoci skopeo ldd dpkg-query; do command -v "$c" >/dev/null || die "$c is required"; done
[[ $(id -u) == 0 ]] || die "run as root (the layers record file owners 70 and 999)"

# ------------------------------------------------ references the chart renders --
rendered_image() { # rendered_image TEMPLATE
  "$HELM" template tau "$CHART" --set postgresql.enabled=true --set redis.enabled=true \
    --show-only "templates/$1" | sed -n 's/^ *image: *"\{0,1\}\([^" ]\{1,\}\)"\{0,1\}$/\1/p' | head -n 1
}
PG_REF=$(rendered_image postgresql.yaml)
REDIS_REF=$(rendered_image redis.yaml)
[[ -n $PG_REF && -n $REDIS_REF ]] || die "could not read the Postgres/Redis images from helm template of $CHART"

# ------------------------------------------------------------- the packages --
# shellcheck disable=SC1091
source "$HERE/install-services.sh"
if ! PG_BIN=$(services_pg_bindir) || ! services_redis_bin >/dev/null; then
  install_services >&2
  PG_BIN=$(services_pg_bindir) || die "no Postgres binaries after install"
fi
PG_BIN=$(dirname "$(readlink -f "$PG_BIN/initdb")")
PG_VERSION=$(basename "$(dirname "$PG_BIN")")
[[ $PG_BIN == /usr/lib/postgresql/$PG_VERSION/bin ]] || die "expected Debian's layout, got $PG_BIN"
PG_LIB=/usr/lib/postgresql/$PG_VERSION/lib
PG_SHARE=/usr/share/postgresql/$PG_VERSION
REDIS_BIN=$(readlink -f "$(services_redis_bin)")
REDIS_CLI=$(readlink -f "$(command -v redis-cli || echo /usr/bin/redis-cli)")
[[ -x $REDIS_CLI ]] || die "redis-cli not found (package redis-tools)"
SHELL_BIN=$(readlink -f /bin/sh)
[[ $(basename "$SHELL_BIN") == dash ]] || SHELL_BIN=$(readlink -f "$(command -v dash)")
versions=$( (dpkg-query -W -f '${Package}=${Version}\n' \
  "postgresql-$PG_VERSION" redis-server redis-tools dash libc6 tzdata 2>/dev/null || true) | sort)

CACHE_ROOT=${TAU_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tau-k8s}/service-images
key=$( { cat "${BASH_SOURCE[0]}"; echo "$PG_REF $REDIS_REF"; echo "$versions"; } | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/$key
if [[ -s $OUT/postgres.tar && -s $OUT/redis.tar ]]; then
  log "cached ($key): $PG_REF, $REDIS_REF"
  echo "$PG_REF $OUT/postgres.tar"
  echo "$REDIS_REF $OUT/redis.tar"
  exit 0
fi

# --------------------------------------------------------------- building --
W=$(mktemp -d "${TMPDIR:-/tmp}/tau-service-images.XXXXXX")
trap 'rm -rf "$W"' EXIT
R="" # the rootfs being filled

copy_file() { # copy_file SRC [DEST]: a file, keeping its mode
  local dest=${2:-$1}
  [[ -e $R$dest ]] || install -D -m "$(stat -c %a "$(readlink -f "$1")")" "$(readlink -f "$1")" "$R$dest"
}

copy_with_libs() { # copy_with_libs BIN [DEST]: a binary and the shared objects it links
  copy_file "$1" "${2:-$1}"
  local lib
  # `ldd` lines: "libx.so => /path (0x..)" or "/lib64/ld-linux-x86-64.so.2 (0x..)"
  for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [[ -f $lib ]] && copy_file "$lib"
  done
}

new_rootfs() { # new_rootfs NAME: an empty image and its unpacked bundle
  umoci init --layout "$W/$1"
  umoci new --image "$W/$1:t"
  umoci unpack --image "$W/$1:t" "$W/$1-bundle" >/dev/null
  R=$W/$1-bundle/rootfs
  copy_with_libs "$SHELL_BIN" /bin/sh
  install -d -m 1777 "$R/tmp"
  install -d -m 0755 "$R/etc" "$R/usr/local/bin"
}

finish() { # finish NAME REF: repack, then export as a docker-archive
  local name=$1 ref=$2
  shift 2
  umoci repack --image "$W/$name:t" "$W/$name-bundle"
  umoci config --image "$W/$name:t" "$@"
  skopeo copy --quiet "oci:$W/$name:t" "docker-archive:$W/$name.tar:$ref"
}

log "building into $OUT: $PG_REF (Debian postgresql-$PG_VERSION), $REDIS_REF (Debian redis-server)"

# Postgres.
new_rootfs postgres
for b in postgres initdb pg_ctl pg_isready psql; do copy_with_libs "$PG_BIN/$b"; done
for so in "$PG_LIB"/*.so; do
  case $(basename "$so") in llvmjit*) continue ;; esac
  copy_with_libs "$so"
done
mkdir -p "$R$(dirname "$PG_SHARE")" "$R/usr/share"
cp -a "$PG_SHARE" "$R$PG_SHARE"
rm -rf "$R$PG_SHARE/man"
cp -a /usr/share/zoneinfo "$R/usr/share/zoneinfo"
printf 'root:x:0:0:root:/root:/sbin/nologin\npostgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:\npostgres:x:70:\nnogroup:x:65534:\n' >"$R/etc/group"
install -d -m 0755 -o 70 -g 70 "$R/var/lib/postgresql"
install -d -m 1777 -o 70 -g 70 "$R/var/lib/postgresql/data"
install -d -m 3777 -o 70 -g 70 "$R/var/run/postgresql"
cat >"$R/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the Postgres stand-in image (.ci/service-images.sh): does
# what the official image's docker-entrypoint.sh does for the variables
# TAU's chart sets, with nothing but sh builtins and Postgres' own programs.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ]; then
  : "${PGDATA:=/var/lib/postgresql/data}"
  export PGDATA
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    case "$user$db" in *\"*) echo "error: POSTGRES_USER and POSTGRES_DB must not contain '\"'" >&2; exit 1 ;; esac
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
      pwfile=$POSTGRES_PASSWORD_FILE
    elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
      pwfile=/dev/stdin
    elif [ "$auth" = trust ]; then
      pwfile=""
    else
      echo "error: database is uninitialized and superuser password is not specified." >&2
      echo "  Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust." >&2
      exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
    printf '%s\n' "${POSTGRES_PASSWORD:-}" |
      initdb --username="$user" ${pwfile:+"--pwfile=$pwfile"} --encoding=UTF8 --locale=C \
        ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
      printf 'CREATE DATABASE "%s";\n' "$db" | postgres --single -D "$PGDATA" -c listen_addresses= postgres >/dev/null
    fi
    echo
    echo "PostgreSQL init process complete; ready for start up."
    echo
  fi
fi
exec "$@"
ENTRYPOINT
chmod 0755 "$R/usr/local/bin/docker-entrypoint.sh"
finish postgres "$PG_REF" \
  --config.entrypoint /usr/local/bin/docker-entrypoint.sh --config.cmd postgres \
  --config.user 70:70 --config.env "PATH=/usr/local/bin:$PG_BIN:/usr/bin:/bin" \
  --config.env PGDATA=/var/lib/postgresql/data --config.exposedports 5432/tcp \
  --config.stopsignal SIGINT

# Redis.
new_rootfs redis
copy_with_libs "$REDIS_BIN" /usr/local/bin/redis-server
copy_with_libs "$REDIS_CLI" /usr/local/bin/redis-cli
printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:Redis:/data:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:\nredis:x:999:\nnogroup:x:65534:\n' >"$R/etc/group"
install -d -m 0755 -o 999 -g 999 "$R/data"
cat >"$R/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the Redis stand-in image (.ci/service-images.sh), as the
# official image's: options or a .conf file as first argument go to
# redis-server; files it creates are private to its user.
set -eu
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ] && [ "$(umask)" = 0022 ]; then umask 0077; fi
exec "$@"
ENTRYPOINT
chmod 0755 "$R/usr/local/bin/docker-entrypoint.sh"
finish redis "$REDIS_REF" \
  --config.entrypoint /usr/local/bin/docker-entrypoint.sh --config.cmd redis-server \
  --config.user 999:999 --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.workingdir /data --config.exposedports 6379/tcp

# Publish atomically; drop older keys (disk is precious).
mkdir -p "$CACHE_ROOT"
rm -rf "$OUT.tmp"
mkdir "$OUT.tmp"
mv "$W/postgres.tar" "$W/redis.tar" "$OUT.tmp/"
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 ! -name "$key.tmp" -exec rm -rf {} +
mv "$OUT.tmp" "$OUT"
log "built ($key): postgres $(du -h "$OUT/postgres.tar" | cut -f1), redis $(du -h "$OUT/redis.tar" | cut -f1)"
echo "$PG_REF $OUT/postgres.tar"
echo "$REDIS_REF $OUT/redis.tar"

#!/usr/bin/env bash
# Build a container image WITHOUT Docker or a registry (umoci + skopeo) as a
# docker-archive tarball that `ctr -n k8s.io images import` loads.
#
#   .ci/tau-image.sh tau REF OUT.tar RELAY-BIN OPERATOR-BIN
#       The TAU image: tau-relay (the entrypoint, as in the Dockerfile) and
#       tau-operator in /usr/local/bin, CA certificates, /etc/passwd+group
#       with nobody (65534), /tmp (1777), TAU_LISTEN=0.0.0.0:8000, user
#       65534. Binaries linked against glibc get the shared objects `ldd`
#       lists (and the loader) copied in; static ones need none.
#   .ci/tau-image.sh --pause PAUSE-BIN REF OUT.tar
#       The pod sandbox image: one static binary as /pause.
#   .ci/tau-image.sh --static BIN REF OUT.tar
#       One static binary as /usr/local/bin/<name> and the entrypoint, CA
#       certificates, /etc/passwd+group with nobody, /tmp (1777), user
#       65534 (the tier's Traefik).
#
# REF is the exact reference pods name (the kubelet never pulls an image
# that is present and IfNotPresent): for the chart's defaults,
# ghcr.io/tau-dev/tau:<Chart appVersion>.
set -euo pipefail
log() { printf '[tau-image] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
for c in umoci skopeo; do command -v "$c" >/dev/null || die "$c is required (apt-get install umoci skopeo)"; done

kind=${1:-}
case $kind in
  tau) [[ $# -eq 5 ]] || die "usage: $0 tau REF OUT.tar RELAY-BIN OPERATOR-BIN"; REF=$2 OUT=$3 ;;
  --pause | --static) [[ $# -eq 4 ]] || die "usage: $0 $kind BIN REF OUT.tar"; REF=$3 OUT=$4 ;;
  *) die "usage: $0 tau REF OUT.tar RELAY-BIN OPERATOR-BIN | --pause PAUSE-BIN REF OUT.tar | --static BIN REF OUT.tar" ;;
esac

W=$(mktemp -d "${TMPDIR:-/tmp}/tau-image.XXXXXX")
trap 'rm -rf "$W"' EXIT
umoci init --layout "$W/oci"
umoci new --image "$W/oci:t"
umoci unpack --image "$W/oci:t" "$W/bundle" >/dev/null
R=$W/bundle/rootfs

copy_with_libs() { # copy_with_libs BIN DEST: the binary, and what it links
  install -D -m 0755 "$1" "$R$2"
  local lib
  # `ldd` lines: "libx.so => /path (0x..)" or "/lib64/ld-linux-x86-64.so.2 (0x..)"
  for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [[ -f $lib ]] || continue
    [[ -e $R$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$R$lib"
  done
}

base_files() { # CA certificates, nobody, /tmp
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$R/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
  install -d -m 1777 "$R/tmp"
}

case $kind in
  --pause)
    install -D -m 0755 "$2" "$R/pause"
    umoci repack --image "$W/oci:t" "$W/bundle"
    umoci config --image "$W/oci:t" --config.entrypoint /pause --config.user 65535:65535
    ;;
  --static)
    name=$(basename "$2")
    install -D -m 0755 "$2" "$R/usr/local/bin/$name"
    base_files
    umoci repack --image "$W/oci:t" "$W/bundle"
    umoci config --image "$W/oci:t" --config.entrypoint "/usr/local/bin/$name" --config.user 65534:65534
    ;;
  tau)
    copy_with_libs "$4" /usr/local/bin/tau-relay
    copy_with_libs "$5" /usr/local/bin/tau-operator
    base_files
    umoci repack --image "$W/oci:t" "$W/bundle"
    umoci config --image "$W/oci:t" --config.entrypoint /usr/local/bin/tau-relay \
      --config.user 65534:65534 --config.env TAU_LISTEN=0.0.0.0:8000 \
      --config.exposedports 8000/tcp
    ;;
esac
rm -f "$OUT"
skopeo copy --quiet "oci:$W/oci:t" "docker-archive:$OUT:$REF"
log "$REF -> $OUT ($(du -h "$OUT" | cut -f1))"

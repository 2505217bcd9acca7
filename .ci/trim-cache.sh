#!/usr/bin/env bash
# Keep CI's build caches inside the disk this machine has.
#
#   .ci/trim-cache.sh            # run by .ci/run before the first build
#
# Why: cargo never deletes anything. Every change to a workspace crate
# leaves its old test binaries, rlibs and incremental sessions behind in
# ~/.cache/tau/target, and a dependency bump leaves the old dependency.
# One stop's CI failed with "no space left on device" half way through the
# real-cluster tier (the Traefik build) because of it. Free space here is
# not a setting: it has been seen anywhere from under 1 GB to 80 GB.
#
# What: in every cargo target directory under ~/.cache/tau, files nobody
# has read for TAU_CACHE_MAX_AGE_DAYS days (default 3; the disk is mounted
# relatime, so a file read by a build has an access time under a day old)
# are deleted, and empty directories with them. Cargo rebuilds whatever it
# finds missing, so a trimmed cache costs compile time, never correctness.
# If free space is still under TAU_CACHE_MIN_FREE_GB (default 25: a cold
# workspace, release and fuzz build plus the cluster tier's images and
# Traefik's Go build need about that), incremental state goes, then the
# whole debug target (a cold ~10 min build).
#
# Prints what it found and what it freed; never fails the run by itself.
set -uo pipefail
CACHE=${TAU_CACHE_DIR:-$HOME/.cache/tau}
MAX_AGE_DAYS=${TAU_CACHE_MAX_AGE_DAYS:-3}
MIN_FREE_GB=${TAU_CACHE_MIN_FREE_GB:-25}

free_gb() { df -P -BG "$CACHE" | awk 'NR == 2 { sub(/G$/, "", $4); print $4 }'; }
log() { printf '[trim-cache] %s\n' "$*"; }

mkdir -p "$CACHE"
log "free before: $(free_gb) GB on $(df -P "$CACHE" | awk 'NR == 2 { print $6 }'); caches: $(du -sh "$CACHE" 2>/dev/null | cut -f1)"

# Cargo target directories: the ones holding a CACHEDIR.TAG cargo wrote.
mapfile -t targets < <(find "$CACHE" -maxdepth 2 -name CACHEDIR.TAG -printf '%h\n' 2>/dev/null)
for target in "${targets[@]}"; do
  before=$(du -sm "$target" | cut -f1)
  find "$target" -type f ! -name CACHEDIR.TAG -atime +"$MAX_AGE_DAYS" -delete 2>/dev/null
  find "$target" -mindepth 1 -type d -empty -delete 2>/dev/null
  after=$(du -sm "$target" | cut -f1)
  log "$target: ${before} MB -> ${after} MB (files unread for ${MAX_AGE_DAYS}+ days removed)"
done

if (($(free_gb) < MIN_FREE_GB)); then
  for target in "${targets[@]}"; do
    rm -rf "$target"/*/incremental
  done
  log "under ${MIN_FREE_GB} GB free: removed incremental state, now $(free_gb) GB free"
fi
if (($(free_gb) < MIN_FREE_GB)); then
  for target in "${targets[@]}"; do
    rm -rf "$target"/debug
  done
  log "still under ${MIN_FREE_GB} GB free: removed the debug targets (cold rebuild), now $(free_gb) GB free"
fi
log "free after: $(free_gb) GB"
exit 0

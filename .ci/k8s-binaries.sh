#!/usr/bin/env bash
# Build (once, then cached) the binaries for a REAL local Kubernetes control
# plane without Docker: etcd + kube-apiserver (run as plain processes, like
# controller-runtime's envtest) and helm. Everything comes from the Go module
# proxy; nothing else is downloaded.
#
#   .ci/k8s-binaries.sh            # build what is missing, print the bin dir last
#   .ci/k8s-binaries.sh --cluster  # also the node parts of a real cluster:
#       kube-controller-manager, kube-scheduler, kubelet, kube-proxy (same
#       throwaway module as kube-apiserver), coredns and a static `pause`
#       (the pod sandbox's process). Used by .ci/cluster-up.sh.
#
# Output: the last line on stdout is the bin dir, e.g.
#   ~/.cache/tau-k8s/v1.33.13/bin   (contains etcd, kube-apiserver, helm)
# Progress goes to stderr. See .ci/K8S-NOTES.md for timings and caveats.
#
# Env knobs:
#   TAU_K8S_CACHE       cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/tau-k8s)
#   TAU_K8S_BUILD_JOBS  go build -p value (default 1: the machine has 2 cores / shared)
#   TAU_K8S_OFFLINE=1   fail instead of building when a binary is missing
set -euo pipefail

# --- pinned versions --------------------------------------------------------
# kube-apiserver: /usr/bin/kubectl is v1.32.x; kubectl supports +/-1 minor of
# skew, so 1.33 is the newest server it officially supports. 1.33.13 is the
# newest 1.33 patch the Go proxy serves (staging modules at v0.33.13).
K8S_VERSION=1.33.13
ETCD_VERSION=3.6.16
HELM_VERSION=3.22.0
COREDNS_VERSION=1.14.7
# ---------------------------------------------------------------------------

CLUSTER=0
case ${1:-} in
  --cluster) CLUSTER=1 ;;
  "") ;;
  *) echo "usage: $0 [--cluster]" >&2; exit 2 ;;
esac

CACHE_ROOT=${TAU_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tau-k8s}
BIN=$CACHE_ROOT/v$K8S_VERSION/bin
mkdir -p "$BIN"

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }

# Keep the build gentle: lowest CPU priority, one package at a time, idle IO.
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false -trimpath -p=${TAU_K8S_BUILD_JOBS:-1}"
export CGO_ENABLED=0
NICE=(nice -n 19)
if command -v ionice >/dev/null; then NICE+=(ionice -c 3); fi

# stamp files record which version a cached binary was built from
have() { # have NAME VERSION
  [[ -x $BIN/$1 && -f $BIN/.$1.version && $(cat "$BIN/.$1.version") == "$2" ]]
}
stamp() { printf '%s\n' "$2" >"$BIN/.$1.version"; }

need_build() { # need_build NAME VERSION -> 0 if it must be built
  if have "$1" "$2"; then log "$1 $2 cached"; return 1; fi
  if [[ ${TAU_K8S_OFFLINE:-0} == 1 ]]; then
    log "$1 $2 missing and TAU_K8S_OFFLINE=1"; exit 1
  fi
  return 0
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tau-k8s-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

timed() { # timed LABEL CMD... ; logs wall time
  local label=$1 t0=$SECONDS
  shift
  "$@"
  log "$label built in $((SECONDS - t0))s"
}

# --- etcd -------------------------------------------------------------------
# The etcd root module (whose main.go is the `etcd` binary) and server/v3 both
# carry replace directives, so neither can be `go install`ed. A throwaway main
# module calling etcdmain.Main (exactly what etcd's own main.go does) works.
build_etcd() {
  local d=$WORK/etcd
  mkdir -p "$d"
  cat >"$d/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (
    cd "$d"
    go mod init tau.local/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
    go mod tidy >&2
    "${NICE[@]}" go build -ldflags='-s -w' -o "$BIN/etcd.tmp" . >&2
  )
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

# --- kube-apiserver -----------------------------------------------------------
# k8s.io/kubernetes requires its staging modules (k8s.io/api, apiserver, ...)
# at v0.0.0 and replaces them with ./staging/... in its own go.mod; replaces of
# a dependency are ignored, so we add our own: every staging module ->
# its published v0.<minor>.<patch>. The list is generated from kubernetes'
# go.mod. Generated code is committed upstream, so no `make` is needed.
build_kube() { # build_kube CMD... : k8s.io/kubernetes/cmd/<CMD> into $BIN
  local d=$WORK/kube-$1 kmod staging   # one throwaway module per call
  mkdir -p "$d"
  cd "$d"
  go mod init tau.local/kube >/dev/null 2>&1
  kmod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [[ -f $kmod ]] || { log "could not download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
  # lines like: k8s.io/api => ./staging/src/k8s.io/api
  staging=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\+\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\2#p' "$kmod" | sort -u)
  [[ -n $staging ]] || { log "no staging replaces found in $kmod"; exit 1; }
  log "replacing $(wc -w <<<"$staging") staging modules with v0.${K8S_VERSION#1.}"
  local m args=()
  for m in $staging; do args+=("-replace=$m=$m@v0.${K8S_VERSION#1.}"); done
  go mod edit "${args[@]}"
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
  # Keep upstream's runtime GODEBUG defaults (1.33 ships `godebug default=go1.24`)
  # rather than those of our newer toolchain's go line.
  local gd
  for gd in $(sed -n 's/^godebug[[:space:]]\+\([^([:space:]]\+\)[[:space:]]*$/\1/p' "$kmod"); do
    go mod edit -godebug="$gd"
  done
  local pkgs=() c
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # `go get` of each main package pulls the modules only it needs into go.mod.
  go get "${pkgs[@]/%/@v$K8S_VERSION}" >&2
  # Version info normally injected by hack/lib/version.sh; without it the
  # server reports v0.0.0-master and kubectl/helm/kube-rs version checks break.
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$d/out"
  "${NICE[@]}" go build -ldflags="$ld" -o "$d/out/" "${pkgs[@]}" >&2
  for c in "$@"; do mv "$d/out/$c" "$BIN/$c"; done
}

# --- helm -----------------------------------------------------------------------
build_helm() {
  local d=$WORK/helm
  mkdir -p "$d"
  # -X flags mirror helm's Makefile: real version string, and the default
  # Kubernetes version used by `helm template`/lint (still pass --kube-version).
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  (
    cd "$d"
    GOBIN=$d "${NICE[@]}" go install -ldflags="$ld" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
  )
  mv "$d/helm" "$BIN/helm"
}

if need_build etcd "$ETCD_VERSION"; then
  log "building etcd v$ETCD_VERSION (first time only)"
  timed etcd build_etcd; stamp etcd "$ETCD_VERSION"
fi
if need_build kube-apiserver "$K8S_VERSION"; then
  log "building kube-apiserver v$K8S_VERSION (first time only; slow: ~tens of minutes on 2 cores)"
  (timed kube-apiserver build_kube kube-apiserver); stamp kube-apiserver "$K8S_VERSION"
fi
if need_build helm "$HELM_VERSION"; then
  log "building helm v$HELM_VERSION (first time only)"
  timed helm build_helm; stamp helm "$HELM_VERSION"
fi

# --- the node parts of a real cluster (--cluster) ------------------------------
# CoreDNS: its main module has replace directives too, so the same trick as
# etcd: a throwaway main doing what coredns.go does (all plugins, then Run).
build_coredns() {
  local d=$WORK/coredns
  mkdir -p "$d"
  cat >"$d/main.go" <<'EOF'
package main

import (
	_ "github.com/coredns/coredns/core/plugin"
	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
EOF
  (
    cd "$d"
    go mod init tau.local/coredns >/dev/null 2>&1
    go get "github.com/coredns/coredns@v$COREDNS_VERSION" >&2
    go mod tidy >&2
    "${NICE[@]}" go build -ldflags="-s -w" -o "$BIN/coredns.tmp" . >&2
  )
  mv "$BIN/coredns.tmp" "$BIN/coredns"
}

# The pod sandbox's process (what registry.k8s.io/pause is): sleep until
# SIGTERM/SIGINT, reap children. Static, standard library only.
PAUSE_VERSION=tau-1
build_pause() {
  local d=$WORK/pause
  mkdir -p "$d"
  cat >"$d/main.go" <<'EOF'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
EOF
  (
    cd "$d"
    go mod init tau.local/pause >/dev/null 2>&1
    go build -ldflags='-s -w' -o "$BIN/pause.tmp" . >&2
  )
  mv "$BIN/pause.tmp" "$BIN/pause"
}

if [[ $CLUSTER == 1 ]]; then
  node=()
  for c in kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if need_build "$c" "$K8S_VERSION"; then node+=("$c"); fi
  done
  if ((${#node[@]})); then
    log "building ${node[*]} v$K8S_VERSION (first time only; ~5 min more on 2 busy cores)"
    (timed "${node[*]}" build_kube "${node[@]}")
    for c in "${node[@]}"; do stamp "$c" "$K8S_VERSION"; done
  fi
  if need_build coredns "$COREDNS_VERSION"; then
    log "building coredns v$COREDNS_VERSION (first time only)"
    timed coredns build_coredns; stamp coredns "$COREDNS_VERSION"
  fi
  if need_build pause "$PAUSE_VERSION"; then
    timed pause build_pause; stamp pause "$PAUSE_VERSION"
  fi
fi

echo "$BIN"

#!/usr/bin/env bash
# Start / stop a REAL local Kubernetes control plane: etcd + kube-apiserver as
# plain processes on free loopback ports (envtest-style; no Docker, no nodes,
# no kube-controller-manager, no scheduler).
#
#   .ci/k8s-up.sh [start] DIR   # start; writes DIR/kubeconfig and DIR/env
#   .ci/k8s-up.sh stop DIR      # kill what `start DIR` started
#   .ci/k8s-up.sh status DIR    # exit 0 if the apiserver answers /readyz
#
# After `start`, `source DIR/env` (or `eval "$(.ci/k8s-up.sh start DIR)"`: the
# env file is also printed on stdout) gives:
#   KUBECONFIG                 DIR/kubeconfig (user admin, group system:masters)
#   TAU_K8S_SERVER             https://127.0.0.1:<port>
#   TAU_K8S_TOKEN              admin bearer token
#   TAU_K8S_ETCD_PID / TAU_K8S_APISERVER_PID
#   TAU_K8S_BIN                dir holding etcd, kube-apiserver, helm
#
# Binaries come from .ci/k8s-binaries.sh (built once, then cached); set
# TAU_K8S_BIN to use another dir. Logs: DIR/etcd.log, DIR/kube-apiserver.log.
# TAU_K8S_READY_TIMEOUT (seconds, default 120) bounds the wait for /readyz.
# TAU_K8S_APISERVER_ARGS: extra kube-apiserver flags (word-split), e.g.
#   TAU_K8S_APISERVER_ARGS="--feature-gates=SomeGate=true"
# `source` the env file by path (`source DIR/env` or `. ./env`): a bare
# `source env` makes bash find /usr/bin/env on PATH first.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[k8s-up] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

mode=start
case ${1:-} in
  start | stop | status) mode=$1; shift ;;
esac
[[ $# -eq 1 ]] || die "usage: $0 [start|stop|status] DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)

ADMIN_TOKEN=admin-token

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

stop_pidfile() { # stop_pidfile NAME: TERM, wait up to 10s, then KILL
  local f=$DIR/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "$1 ($pid) ignored TERM, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $1 ($pid)"
  fi
  rm -f "$f"
}

readyz() { # readyz PORT
  curl -ksf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$1/readyz" >/dev/null 2>&1
}

case $mode in
  stop)
    # apiserver first so it does not spin on a vanished etcd
    stop_pidfile kube-apiserver
    stop_pidfile etcd
    rm -f "$DIR/apiserver.port"
    exit 0
    ;;
  status)
    [[ -f $DIR/apiserver.port ]] && readyz "$(cat "$DIR/apiserver.port")" && exit 0
    exit 1
    ;;
esac

# ---------------------------------------------------------------- start --
for n in etcd kube-apiserver; do
  if [[ -f $DIR/$n.pid ]] && alive "$(cat "$DIR/$n.pid")"; then
    die "$n already running from $DIR (pid $(cat "$DIR/$n.pid")); run: $0 stop $DIR"
  fi
done

if [[ -z ${TAU_K8S_BIN:-} ]]; then
  TAU_K8S_BIN=$("$HERE/k8s-binaries.sh" | tail -n 1)
fi
for b in etcd kube-apiserver; do
  [[ -x $TAU_K8S_BIN/$b ]] || die "$TAU_K8S_BIN/$b missing"
done
command -v curl >/dev/null || die "curl is required"
command -v openssl >/dev/null || die "openssl is required"

# Free loopback ports: bind to port 0 and let the kernel choose. (Tiny race
# between closing and the server binding; acceptable for a test harness.)
free_ports() { # free_ports N -> N distinct ports, one per line
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
  else # no python: random high ports that nothing listens on right now
    local used n=0 p
    used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
    while ((n < $1)); do
      p=$((20000 + RANDOM % 30000))
      grep -qx "$p" <<<"$used" && continue
      used+=$'\n'$p
      echo "$p"
      n=$((n + 1))
    done
  fi
}
mapfile -t ports < <(free_ports 3)
ETCD_PORT=${ports[0]} PEER_PORT=${ports[1]} API_PORT=${ports[2]}

# Fresh state each start: the data is throwaway.
rm -rf "$DIR/etcd-data" "$DIR/pki"
mkdir -p "$DIR/pki"
openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
chmod 600 "$DIR/sa.key"
# token,user,uid,"group1,group2"
printf '%s,admin,admin,system:masters\n' "$ADMIN_TOKEN" >"$DIR/tokens.csv"

start_bg() { # start_bg NAME CMD... ; detached, own session, pid into DIR/NAME.pid
  local name=$1; shift
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

cleanup_on_fail() {
  log "start failed; last lines of the logs:"
  tail -n 20 "$DIR/etcd.log" "$DIR/kube-apiserver.log" >&2 2>/dev/null || true
  stop_pidfile kube-apiserver
  stop_pidfile etcd
}
trap cleanup_on_fail ERR

ETCD_URL=http://127.0.0.1:$ETCD_PORT
start_bg etcd "$TAU_K8S_BIN/etcd" \
  --name=tau \
  --data-dir="$DIR/etcd-data" \
  --listen-client-urls="$ETCD_URL" \
  --advertise-client-urls="$ETCD_URL" \
  --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-cluster="tau=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync \
  --log-level=warn

deadline=$((SECONDS + ${TAU_K8S_READY_TIMEOUT:-120}))
until curl -sf --max-time 2 "$ETCD_URL/health" >/dev/null 2>&1; do
  alive "$(cat "$DIR/etcd.pid")" || { log "etcd exited"; false; }
  ((SECONDS < deadline)) || { log "etcd not healthy in time"; false; }
  sleep 0.2
done
log "etcd up on $ETCD_URL (pid $(cat "$DIR/etcd.pid"))"

start_bg kube-apiserver "$TAU_K8S_BIN/kube-apiserver" \
  --etcd-servers="$ETCD_URL" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --cert-dir="$DIR/pki" \
  --token-auth-file="$DIR/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$DIR/sa.key" \
  --service-account-signing-key-file="$DIR/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --allow-privileged=true \
  --disable-admission-plugins=ServiceAccount \
  --endpoint-reconciler-type=none \
  --profiling=false \
  --v=1 \
  ${TAU_K8S_APISERVER_ARGS:-}

until readyz "$API_PORT"; do
  alive "$(cat "$DIR/kube-apiserver.pid")" || { log "kube-apiserver exited"; false; }
  ((SECONDS < deadline)) || { log "kube-apiserver /readyz not ok in time"; false; }
  sleep 0.5
done
trap - ERR
echo "$API_PORT" >"$DIR/apiserver.port"
SERVER=https://127.0.0.1:$API_PORT
log "kube-apiserver ready on $SERVER (pid $(cat "$DIR/kube-apiserver.pid"))"

# The apiserver self-generates its serving cert in --cert-dir: apiserver.crt
# holds the leaf (SANs include 127.0.0.1, localhost) followed by its CA. We
# trust that CA, so clients verify TLS for real (no insecure-skip).
ca_file=$DIR/pki/ca.crt
awk 'BEGIN{n=0} /BEGIN CERTIFICATE/{n++} n>=2{print}' "$DIR/pki/apiserver.crt" >"$ca_file"
if [[ -s $ca_file ]] && curl -sf --max-time 5 --cacert "$ca_file" \
  -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVER/readyz" >/dev/null 2>&1; then
  tls_line="certificate-authority-data: $(base64 -w0 <"$ca_file")"
else
  log "could not verify the serving cert against its CA; using insecure-skip-tls-verify"
  tls_line="insecure-skip-tls-verify: true"
fi

cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tau-local
  cluster:
    server: $SERVER
    $tls_line
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: tau-local
  context:
    cluster: tau-local
    user: admin
    namespace: default
current-context: tau-local
EOF
chmod 600 "$DIR/kubeconfig"

cat >"$DIR/env" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export TAU_K8S_SERVER=$SERVER
export TAU_K8S_TOKEN=$ADMIN_TOKEN
export TAU_K8S_ETCD_PID=$(cat "$DIR/etcd.pid")
export TAU_K8S_APISERVER_PID=$(cat "$DIR/kube-apiserver.pid")
export TAU_K8S_BIN=$TAU_K8S_BIN
EOF
cat "$DIR/env"

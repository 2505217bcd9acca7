#!/usr/bin/env bash
# A REAL single-node Kubernetes cluster whose pods run: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc, kubelet,
# kube-proxy (iptables) and CoreDNS, all as plain processes with their state
# in DIR; pods on a CNI bridge (cni0). No Docker, no registry: images are
# imported into containerd (`ctr -n k8s.io images import`, see
# .ci/tau-image.sh). Settings: ../shared/reference/real-cluster.md.
#
#   .ci/cluster-up.sh start DIR   # up; writes DIR/kubeconfig and DIR/env
#   .ci/cluster-up.sh stop DIR    # tear down, restore the host, verify it
#   .ci/cluster-up.sh check DIR   # only the "machine is as it was" checks
#
# Needs root and the Debian packages containerd runc containernetworking-plugins
# iptables conntrack (umoci skopeo for images). Binaries: .ci/k8s-binaries.sh
# --cluster (built once, cached). `start` refuses to run when cni0 exists.
#
# Network (the project's rule: traffic only between pods, the bridge address
# and loopback; nothing masqueraded out):
#   pods 10.244.0.0/16 on cni0 (gateway 10.244.0.1, ipMasq false),
#   Services 10.96.0.0/16; kube-apiserver and the kubelet listen on
#   10.244.0.1 (pods cannot reach loopback), everything else on 127.0.0.1;
#   cluster DNS = CoreDNS on 10.244.0.1:53, answering only cluster.local;
#   pods get a resolv.conf naming only it. A packet guard (mangle chain
#   TAU-GUARD) drops and counts every packet from cni0 that is not for a pod,
#   a Service or the bridge address; `stop` fails if it dropped anything.
#
# Storage: TAU_CLUSTER_PVS (default 4) hostPath PersistentVolumes of 1Gi
# (no StorageClass, Retain) under DIR/pv/, for claims that name no class.
#
# What `stop` restores, then verifies (and fails naming what is left): the
# processes it started (by recorded PID), pods deleted while the kubelet
# still runs (CNI DEL, unmounts), leftover containerd tasks, `kube-proxy
# --cleanup`, iptables/ip6tables equal to the snapshot taken at start (KUBE-*,
# CNI-*, TAU-GUARD chains removed), sysctls vm.overcommit_memory kernel.panic
# kernel.panic_on_oops net.ipv4.ip_forward as saved, cgroups kubepods and
# k8s.io gone from every hierarchy, no cni0, no /var/run/netns/cni-*, no
# mounts under DIR, /var/log/containers, /var/lib/cni, /run/containerd as
# before. Logs: DIR/*.log (kubelet.log, containerd.log, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[cluster-up] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

mode=${1:-}
[[ $# -eq 2 && $mode =~ ^(start|stop|check)$ ]] || { echo "usage: $0 start|stop|check DIR" >&2; exit 2; }
mkdir -p "$2"
DIR=$(cd "$2" && pwd)

BRIDGE=cni0
BRIDGE_IP=10.244.0.1
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
NODE=tau-node
API_PORT=6443
PAUSE_REF=tau.local/pause:tau-1
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)
CGROUP_NAMES=(kubepods k8s.io)

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# ------------------------------------------------------------- snapshots --
# What the host looked like before `start`; `stop` puts it back and compares.
snapshot() { # snapshot FILE-PREFIX
  iptables-save | sed '/^#/d' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$1.iptables"
  ip6tables-save | sed '/^#/d' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$1.ip6tables"
  local p
  for p in /var/log/containers /var/lib/cni /run/containerd /var/run/netns; do
    if [[ -e $p ]]; then echo "$p: $(find "$p" -mindepth 1 2>/dev/null | sort | tr '\n' ' ')"; else echo "$p: absent"; fi
  done >"$1.paths"
  echo "nft tables: $(nft list tables 2>/dev/null | sort | tr '\n' ' ')" >>"$1.paths"
  echo "veth links: $(ip -o link show | awk -F': ' '$2 ~ /^veth/ {print $2}' | sort | tr '\n' ' ')" >>"$1.paths"
}

# ------------------------------------------------------------------ stop --
stop_pid() { # stop_pid NAME: TERM, wait up to 15 s, then KILL
  local f=$DIR/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "$1 ($pid) ignored TERM; KILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$f"
}

kubectl_admin() { KUBECONFIG=$DIR/kubeconfig kubectl --request-timeout=10s "$@"; }

delete_workloads() { # while the kubelet still runs: it runs CNI DEL and unmounts
  [[ -f $DIR/kubeconfig && -f $DIR/kubelet.pid ]] || return 0
  alive "$(cat "$DIR/kubelet.pid")" || return 0
  alive "$(cat "$DIR/kube-apiserver.pid" 2>/dev/null)" || return 0
  log "deleting every pod (the kubelet tears down their sandboxes)"
  # Controllers would recreate pods: stop them first.
  stop_pid kube-controller-manager
  stop_pid kube-scheduler
  kubectl_admin delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    [[ -z $(kubectl_admin get pods -A -o name 2>/dev/null) ]] && break
    sleep 1
  done
  # Sandboxes go a moment after the pod objects.
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    [[ -z $(crictl_ls) ]] && break
    sleep 1
  done
}

crictl_ls() { # tasks (sandboxes, containers) still running in our containerd
  [[ -S $DIR/containerd/containerd.sock ]] || return 0
  ctr --address "$DIR/containerd/containerd.sock" -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' || true
}

remove_containers() {
  local sock=$DIR/containerd/containerd.sock c
  [[ -S $sock ]] || return 0
  alive "$(cat "$DIR/containerd.pid" 2>/dev/null)" || return 0
  for c in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$sock" -n k8s.io tasks kill -s KILL "$c" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for c in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$sock" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true
  done
  for c in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
    ctr --address "$sock" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
  done
}

restore_iptables() { # back to the start snapshot: drop our chains and jumps
  local t cmd save
  for cmd in iptables ip6tables; do
    save=$DIR/host-before.$cmd
    [[ -f $save ]] || continue
    for t in filter nat mangle raw; do
      # rules jumping to our chains, from any chain
      "$cmd-save" -t "$t" 2>/dev/null | { grep -E '^-A .* -j (KUBE-|CNI-|TAU-)' || true; } | sed 's/^-A /-D /' |
        while read -r rule; do eval "$cmd -t $t $rule" 2>/dev/null || true; done
      local ch
      for ch in $("$cmd-save" -t "$t" 2>/dev/null | sed -n 's/^:\(\(KUBE-\|CNI-\|TAU-\)[^ ]*\).*/\1/p'); do
        "$cmd" -t "$t" -F "$ch" 2>/dev/null || true
      done
      for ch in $("$cmd-save" -t "$t" 2>/dev/null | sed -n 's/^:\(\(KUBE-\|CNI-\|TAU-\)[^ ]*\).*/\1/p'); do
        "$cmd" -t "$t" -X "$ch" 2>/dev/null || true
      done
    done
  done
  # iptables-nft leaves the tables it created behind, empty: remove those
  # that did not exist before (and hold no rule).
  local family before
  before=$(sed -n 's/^nft tables: //p' "$DIR/host-before.paths" 2>/dev/null)
  for family in ip ip6; do
    cmd=iptables; [[ $family == ip6 ]] && cmd=ip6tables
    for t in filter nat mangle raw; do
      nft list table "$family" "$t" >/dev/null 2>&1 || continue
      grep -qF "table $family $t " <<<"$before " && continue
      "$cmd-save" -t "$t" 2>/dev/null | grep -q '^-A' && continue
      nft delete table "$family" "$t" 2>/dev/null || true
    done
  done
}

umount_under() { # umount_under PATH: every mount below PATH, deepest first
  local m
  for m in $(awk -v p="$1" '$2 == p || index($2, p "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

remove_cgroups() {
  local root name d
  for root in /sys/fs/cgroup/*/; do
    for name in "${CGROUP_NAMES[@]}"; do
      d=$root$name
      [[ -d $d ]] || continue
      # depth first: a cgroup can only be removed once it has no children
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  done
}

guard_drops() { # packets the guard dropped (IPv4 + IPv6)
  local n4 n6
  n4=$(iptables -t mangle -L TAU-GUARD -vnx 2>/dev/null | awk '$3 == "DROP" {s += $1} END {print s + 0}')
  n6=$(ip6tables -t mangle -L TAU-GUARD -vnx 2>/dev/null | awk '$3 == "DROP" {s += $1} END {print s + 0}')
  echo $((n4 + n6))
}

check_host() { # the machine is as it was: prints what is left, fails if anything
  local left=() s want have cmd p
  for s in "${SYSCTLS[@]}"; do
    want=$(sed -n "s/^$s=//p" "$DIR/host-before.sysctl" 2>/dev/null)
    have=$(sysctl -n "$s")
    [[ -z $want || $want == "$have" ]] || left+=("sysctl $s=$have (was $want)")
  done
  for cmd in iptables ip6tables; do
    [[ -f $DIR/host-before.$cmd ]] || continue
    "$cmd-save" | sed '/^#/d' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$DIR/host-after.$cmd"
    diff -q "$DIR/host-before.$cmd" "$DIR/host-after.$cmd" >/dev/null ||
      left+=("$cmd rules differ from the start (diff $DIR/host-before.$cmd $DIR/host-after.$cmd)")
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("link $BRIDGE")
  compgen -G "/var/run/netns/cni-*" >/dev/null && left+=("netns $(ls /var/run/netns | tr '\n' ' ')")
  grep -q " $DIR" /proc/mounts && left+=("mounts under $DIR")
  for p in /sys/fs/cgroup/*/; do
    for s in "${CGROUP_NAMES[@]}"; do [[ -d $p$s ]] && left+=("cgroup $p$s"); done
  done
  for s in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns; do
    [[ -f $DIR/$s.pid ]] && alive "$(cat "$DIR/$s.pid")" && left+=("process $s")
  done
  pgrep -f "containerd-shim-runc-v2 .*-address $DIR/" >/dev/null && left+=("containerd shims")
  if [[ -f $DIR/host-before.paths ]]; then
    snapshot "$DIR/host-after"
    diff -q "$DIR/host-before.paths" "$DIR/host-after.paths" >/dev/null ||
      left+=("paths differ: $(diff "$DIR/host-before.paths" "$DIR/host-after.paths" | grep '^>' | cut -c1-300 | tr '\n' ' ')")
  fi
  if ((${#left[@]})); then
    log "NOT restored:"; printf '  %s\n' "${left[@]}" >&2
    return 1
  fi
  log "host restored: processes, sysctls (${SYSCTLS[*]}), iptables+ip6tables (= start snapshot), $BRIDGE and veths, /var/run/netns/cni-*, mounts under DIR, cgroups (${CGROUP_NAMES[*]}), /var/log/containers, /var/lib/cni, /run/containerd"
}

do_stop() {
  local rc=0 drops
  delete_workloads
  # The guard's verdict before its chain goes.
  drops=$(guard_drops)
  local seen
  seen=$(iptables -t mangle -L PREROUTING -vnx 2>/dev/null | awk '$3 == "TAU-GUARD" {s += $1} END {print s + 0}')
  [[ -n $seen && $seen != 0 ]] && log "packet guard: $seen IPv4 packets from pods checked, $drops dropped"
  if ((drops > 0)); then
    log "PACKET GUARD: $drops packet(s) from pods to addresses outside pods/Services/the bridge were dropped:"
    iptables -t mangle -L TAU-GUARD -vn >&2 2>/dev/null || true
    ip6tables -t mangle -L TAU-GUARD -vn >&2 2>/dev/null || true
    rc=1
  fi
  stop_pid kube-proxy
  stop_pid coredns
  stop_pid kube-controller-manager
  stop_pid kube-scheduler
  stop_pid kubelet
  remove_containers
  stop_pid containerd
  # shims that outlived containerd (ours only: they carry our socket path)
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $DIR/" || true); do kill -KILL "$p" 2>/dev/null || true; done
  stop_pid kube-apiserver
  stop_pid etcd
  if [[ -x ${TAU_K8S_BIN:-}/kube-proxy || -f $DIR/bin.path ]]; then
    local bin=${TAU_K8S_BIN:-$(cat "$DIR/bin.path")}
    "$bin/kube-proxy" --cleanup --proxy-mode=iptables >"$DIR/kube-proxy-cleanup.log" 2>&1 || true
  fi
  restore_iptables
  # netns: unmount and remove those CNI made
  for p in /var/run/netns/cni-*; do
    [[ -e $p ]] || continue
    umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true
    rm -f "$p"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  umount_under "$DIR"
  remove_cgroups
  # paths the kubelet/containerd/CNI create outside DIR: back to the snapshot
  restore_paths
  if [[ -f $DIR/host-before.sysctl ]]; then
    while IFS='=' read -r k v; do sysctl -qw "$k=$v" >/dev/null || log "could not restore $k=$v"; done <"$DIR/host-before.sysctl"
  fi
  check_host || rc=1
  return $rc
}

restore_paths() {
  local line p items
  [[ -f $DIR/host-before.paths ]] || return 0
  while IFS= read -r line; do
    p=${line%%: *}; items=${line#*: }
    case $p in /var/log/containers | /var/lib/cni | /run/containerd | /var/run/netns) ;; *) continue ;; esac
    if [[ $items == absent ]]; then
      rm -rf "$p"
    elif [[ -d $p ]]; then
      local f
      while IFS= read -r f; do
        [[ -z $f ]] && continue
        grep -qF " $f " <<<" $items " || rm -rf "$f"
      done < <(find "$p" -mindepth 1 -maxdepth 3 2>/dev/null | sort -r)
    fi
  done <"$DIR/host-before.paths"
}

case $mode in
  stop) do_stop; exit $? ;;
  check) check_host; exit $? ;;
esac

# ----------------------------------------------------------------- start --
[[ $(id -u) == 0 ]] || die "must run as root (kubelet, containerd, CNI)"
for c in containerd runc ctr iptables ip6tables conntrack ip curl openssl; do
  command -v "$c" >/dev/null || die "$c is required (apt-get install containerd runc containernetworking-plugins iptables conntrack)"
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
  die "CNI plugins missing in /usr/lib/cni (apt-get install containernetworking-plugins)"
ip link show "$BRIDGE" >/dev/null 2>&1 && die "$BRIDGE exists: another cluster runs here (or a failed teardown; see its DIR)"
for n in etcd kube-apiserver containerd kubelet; do
  [[ -f $DIR/$n.pid ]] && alive "$(cat "$DIR/$n.pid")" && die "$n already running from $DIR; run: $0 stop $DIR"
done

BIN=${TAU_K8S_BIN:-$("$HERE/k8s-binaries.sh" --cluster | tail -n 1)}
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns pause; do
  [[ -x $BIN/$b ]] || die "$BIN/$b missing (run .ci/k8s-binaries.sh --cluster)"
done
echo "$BIN" >"$DIR/bin.path"

T0=$SECONDS
# From here on a failure (or an interrupt) tears everything down again.
STARTED=0
on_exit() {
  local rc=$?
  [[ $STARTED == 1 ]] && return 0
  log "start failed (exit $rc); logs in $DIR (last lines below); tearing down"
  for f in "$DIR"/*.log; do [[ -s $f ]] && { echo "--- $f"; tail -n 15 "$f"; } >&2; done
  do_stop || true
  exit 1
}
trap on_exit EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

rm -rf "$DIR/etcd-data" "$DIR/pki" "$DIR/kubelet" "$DIR/containerd" "$DIR/cni" "$DIR/pv"
mkdir -p "$DIR/pki" "$DIR/kubelet" "$DIR/containerd" "$DIR/cni/net.d" "$DIR/cni/ipam" "$DIR/pod-logs" "$DIR/pv"

snapshot "$DIR/host-before"
for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$DIR/host-before.sysctl"

start_bg() { # start_bg NAME CMD...: own session, PID recorded
  local name=$1; shift
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}
wait_until() { # wait_until SECONDS WHAT NAME-OF-PROCESS CMD...
  local limit=$1 what=$2 proc=$3; shift 3
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [[ -z $proc ]] || alive "$(cat "$DIR/$proc.pid")" || { log "$proc exited; see $DIR/$proc.log"; false; }
    ((SECONDS < deadline)) || { log "timed out waiting for $what"; false; }
    sleep 0.3
  done
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# --- the bridge and the packet guard -----------------------------------------
ip link add "$BRIDGE" type bridge
ip addr add "$BRIDGE_IP/16" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Every packet from a pod must be for a pod, a Service (before kube-proxy's
# DNAT: mangle PREROUTING runs first) or the bridge address; the rest is
# dropped and counted. IPv6: only link-local and multicast (neighbour
# discovery), which never leave the link.
iptables -t mangle -N TAU-GUARD
iptables -t mangle -A TAU-GUARD -d "$POD_CIDR" -j RETURN
iptables -t mangle -A TAU-GUARD -d "$SERVICE_CIDR" -j RETURN
iptables -t mangle -A TAU-GUARD -d 255.255.255.255 -j RETURN
iptables -t mangle -A TAU-GUARD -j DROP
iptables -t mangle -I PREROUTING 1 -i "$BRIDGE" -j TAU-GUARD
ip6tables -t mangle -N TAU-GUARD
ip6tables -t mangle -A TAU-GUARD -d fe80::/10 -j RETURN
ip6tables -t mangle -A TAU-GUARD -d ff00::/8 -j RETURN
ip6tables -t mangle -A TAU-GUARD -j DROP
ip6tables -t mangle -I PREROUTING 1 -i "$BRIDGE" -j TAU-GUARD

# --- etcd + kube-apiserver (on the bridge address) -------------------------
mapfile -t ports < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(7):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
)
ETCD_PORT=${ports[0]} PEER_PORT=${ports[1]} KCM_PORT=${ports[2]} SCHED_PORT=${ports[3]}
PROXY_HEALTH=${ports[4]} PROXY_METRICS=${ports[5]} KUBELET_HEALTH=${ports[6]}
openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
chmod 600 "$DIR/sa.key"
printf 'admin-token,admin,admin,system:masters\n' >"$DIR/tokens.csv"
ETCD_URL=http://127.0.0.1:$ETCD_PORT
start_bg etcd "$BIN/etcd" --name=tau --data-dir="$DIR/etcd-data" \
  --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
  --listen-peer-urls="http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-cluster="tau=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync --log-level=warn
wait_until 60 "etcd /health" etcd curl -sf --max-time 2 "$ETCD_URL/health"

SERVER=https://$BRIDGE_IP:$API_PORT
start_bg kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="$ETCD_URL" \
  --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$API_PORT" \
  --cert-dir="$DIR/pki" --token-auth-file="$DIR/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$DIR/sa.key" --service-account-signing-key-file="$DIR/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP \
  --profiling=false --v=1 ${TAU_CLUSTER_APISERVER_ARGS:-}
readyz() { curl -ksf --max-time 3 -H "Authorization: Bearer admin-token" "$SERVER/readyz"; }
wait_until 120 "kube-apiserver /readyz" kube-apiserver readyz
awk 'BEGIN{n=0} /BEGIN CERTIFICATE/{n++} n>=2{print}' "$DIR/pki/apiserver.crt" >"$DIR/pki/ca.crt"
curl -sf --max-time 3 --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer admin-token" "$SERVER/readyz" >/dev/null ||
  die "the apiserver's serving cert does not verify against its CA"
cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tau-cluster
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: admin
  user:
    token: admin-token
contexts:
- name: tau-cluster
  context: {cluster: tau-cluster, user: admin, namespace: default}
current-context: tau-cluster
EOF
chmod 600 "$DIR/kubeconfig"
log "kube-apiserver ready on $SERVER ($((SECONDS - T0)) s)"

# --- controller-manager, scheduler ------------------------------------------
start_bg kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$DIR/kubeconfig" --leader-elect=false \
  --service-account-private-key-file="$DIR/sa.key" --root-ca-file="$DIR/pki/ca.crt" \
  --use-service-account-credentials=false \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --v=1
start_bg kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$DIR/kubeconfig" --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --v=1

# --- containerd --------------------------------------------------------------
cat >"$DIR/cni/net.d/10-tau.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "tau",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
C=$DIR/containerd
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
start_bg containerd containerd --config "$C/config.toml"
wait_until 30 "containerd socket" containerd ctr --address "$C/containerd.sock" version
CTR=(ctr --address "$C/containerd.sock" -n k8s.io)

# The pause image: the static binary from k8s-binaries.sh, packed as an OCI
# image with umoci (no Docker), imported under PAUSE_REF.
if ! "${CTR[@]}" images ls -q | grep -x "$PAUSE_REF" >/dev/null; then
  "$HERE/tau-image.sh" --pause "$BIN/pause" "$PAUSE_REF" "$DIR/pause.tar" >"$DIR/pause-image.log" 2>&1 ||
    { log "pause image failed: $DIR/pause-image.log"; false; }
  "${CTR[@]}" images import "$DIR/pause.tar" >/dev/null
  rm -f "$DIR/pause.tar"
fi

# --- CoreDNS (host process on the bridge address; only cluster.local) ------
cat >"$DIR/Corefile" <<EOF
cluster.local:53 {
    bind $BRIDGE_IP
    errors
    kubernetes cluster.local {
        kubeconfig $DIR/kubeconfig tau-cluster
        pods insecure
    }
    cache 5
}
.:53 {
    bind $BRIDGE_IP
    # Nothing outside the cluster resolves (the network rule): answer REFUSED.
    acl {
        block
    }
}
EOF
start_bg coredns "$BIN/coredns" -conf "$DIR/Corefile"

# --- kubelet -----------------------------------------------------------------
# Pods' resolv.conf: the kubelet writes the cluster DNS for ClusterFirst pods;
# this file (dnsPolicy Default) names nothing, never the host's resolver.
printf '# no upstream resolver: pods use the cluster DNS only\n' >"$DIR/resolv.conf"
cat >"$DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTH
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$C/containerd.sock
clusterDNS: [$BRIDGE_IP]
clusterDomain: cluster.local
resolvConf: $DIR/resolv.conf
podLogsDir: $DIR/pod-logs
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
# Absolute, small thresholds: a percentage of a big shared disk that other
# work fills is gigabytes, and the kubelet would evict our pods for it.
evictionHard: {memory.available: "100Mi", nodefs.available: "100Mi", imagefs.available: "100Mi", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
EOF
start_bg kubelet "$BIN/kubelet" \
  --config="$DIR/kubelet-config.yaml" --kubeconfig="$DIR/kubeconfig" \
  --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet/pki" \
  --hostname-override="$NODE" --node-ip="$BRIDGE_IP" --v=1

# --- kube-proxy --------------------------------------------------------------
start_bg kube-proxy "$BIN/kube-proxy" \
  --kubeconfig="$DIR/kubeconfig" --hostname-override="$NODE" \
  --proxy-mode=iptables --cluster-cidr="$POD_CIDR" \
  --iptables-localhost-nodeports=false \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --bind-address=127.0.0.1 --healthz-bind-address="127.0.0.1:$PROXY_HEALTH" \
  --metrics-bind-address="127.0.0.1:$PROXY_METRICS" --v=1

export KUBECONFIG=$DIR/kubeconfig
node_ready() { [[ $(kubectl --request-timeout=5s get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
wait_until 120 "node $NODE Ready" kubelet node_ready
default_sa() { kubectl --request-timeout=5s -n default get serviceaccount default; }
wait_until 60 "ServiceAccount default/default (controller-manager)" kube-controller-manager default_sa
proxy_synced() { iptables -t nat -S KUBE-SERVICES | grep -q 'default/kubernetes:https'; }
wait_until 60 "kube-proxy rules for the kubernetes Service" kube-proxy proxy_synced

# kube-dns Service: the address the chart's NetworkPolicy and tools expect;
# its Endpoints are CoreDNS on the bridge address (no selector).
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: 10.96.0.10
  ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: kube-dns
  namespace: kube-system
subsets:
  - addresses: [{ip: $BRIDGE_IP}]
    ports:
      - {name: dns, port: 53, protocol: UDP}
      - {name: dns-tcp, port: 53, protocol: TCP}
EOF

# hostPath PersistentVolumes for claims without a StorageClass. World-writable
# directories: hostPath ignores fsGroup, and pods run as non-root users.
for ((i = 0; i < ${TAU_CLUSTER_PVS:-4}; i++)); do
  mkdir -p "$DIR/pv/pv$i"
  chmod 0777 "$DIR/pv/pv$i"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: tau-pv$i
  labels: {tau.dev/cluster-tier: "true"}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $DIR/pv/pv$i, type: Directory}
EOF
done

dns_ok() { # the kubernetes Service's name resolves through CoreDNS
  python3 - "$BRIDGE_IP" <<'EOF'
import socket, struct, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
for part in "kubernetes.default.svc.cluster.local".split("."):
    q += bytes([len(part)]) + part.encode()
q += b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, (sys.argv[1], 53))
r = s.recv(512)
ancount = struct.unpack(">H", r[6:8])[0]
sys.exit(0 if ancount >= 1 and r[-4:] == socket.inet_aton("10.96.0.1") else 1)
EOF
}
wait_until 30 "CoreDNS answers kubernetes.default.svc.cluster.local" coredns dns_ok

cat >"$DIR/env" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export TAU_CLUSTER_DIR=$DIR
export TAU_CLUSTER_SERVER=$SERVER
export TAU_CLUSTER_BRIDGE_IP=$BRIDGE_IP
export TAU_CLUSTER_CONTAINERD=$C/containerd.sock
export TAU_K8S_BIN=$BIN
EOF
STARTED=1
log "cluster up in $((SECONDS - T0)) s: node $NODE Ready, DNS on $BRIDGE_IP, logs in $DIR/*.log"
cat "$DIR/env"

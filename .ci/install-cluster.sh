#!/usr/bin/env bash
# Install the Debian packages the real-cluster tier needs (.ci/cluster-up.sh,
# .ci/tau-image.sh): containerd runc containernetworking-plugins iptables
# conntrack umoci skopeo. Only the binaries are wanted: apt's postinst is kept
# from starting a system containerd (a policy-rc.d denying service starts,
# present only during apt-get and only when none exists). Idempotent: when
# every command is there nothing is downloaded. Needs root when something is
# missing.
set -euo pipefail
missing=0
for c in containerd runc ctr iptables ip6tables conntrack umoci skopeo nft; do
  command -v "$c" >/dev/null || missing=1
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || missing=1
if [[ $missing == 0 ]]; then
  echo "cluster packages present"
  exit 0
fi
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  own_policy=1
fi
trap '[[ $own_policy == 1 ]] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  containerd runc containernetworking-plugins iptables conntrack umoci skopeo nftables >/dev/null
echo "cluster packages installed"

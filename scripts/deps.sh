#!/usr/bin/env bash
# Debian packages the daemon and its tests need on the host.
set -euo pipefail
# python3, python3-venv and openjdk-17-jdk-headless: what the shipped runtimes
# (runtimes/) are built from; git: runtime sources cloned from git; btrfs-progs:
# the workspaces' file system (joblet.maxWorkspaceSize); chromium: the web UI's browser tests
packages=(tini libseccomp2 util-linux procps iproute2 e2fsprogs btrfs-progs python3 python3-venv
  openjdk-17-jdk-headless git redis-server nftables iptables chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "host packages present: ${packages[*]}"

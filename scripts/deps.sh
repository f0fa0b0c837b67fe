#!/usr/bin/env bash
# Installs the Debian packages braid builds with, where missing (needs root or sudo).
set -euo pipefail
need=()
for pkg in cmake g++ libgtest-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libfmt-dev pkg-config libpcre2-dev libcpp-httplib-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}"
fi

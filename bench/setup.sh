#!/usr/bin/env bash
# setup.sh: installs what bench/compare.sh needs, with apt, when it is missing: Go (1.19 or
# newer) for the Go peers, wrk (HTTP load), redis-tools (redis-benchmark) and redis-server
# (the Redis reference peer), curl (HTTP health checks), openssl (the TLS scenarios' throwaway
# certificates) and taskset (util-linux). Running it again installs nothing new. Rust (cargo) is expected already: goway itself needs it.
set -euo pipefail

packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
need go golang-go
need wrk wrk
need redis-benchmark redis-tools
need redis-server redis-server
need curl curl
need openssl openssl
need taskset util-linux

if [ "${#packages[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing: ${packages[*]}"
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

# Go 1.19 or newer (Debian 12's golang-go is 1.19).
go_version="$(go env GOVERSION 2>/dev/null || go version | awk '{ print $3 }')"
minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<< "$go_version")"
if ! [ "$minor" -ge 19 ] 2>/dev/null; then
  echo "setup.sh: $go_version is too old: the Go peers need Go 1.19 or newer" >&2
  exit 1
fi
command -v cargo >/dev/null 2>&1 || echo "setup.sh: cargo not found: install Rust (1.85 or newer) to build goway and the Rust peers" >&2

echo "benchmark tools ready: $go_version, $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), redis-benchmark $(redis-benchmark --version | awk '{ print $2 }'), $(redis-server --version | awk '{ print $3 }'), curl $(curl --version | awk 'NR == 1 { print $2 }')"

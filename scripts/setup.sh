#!/usr/bin/env bash
# Installs what building, running and testing StreamFence needs on Debian 12, then
# configures the build. Idempotent: packages already present are not reinstalled.
#   scripts/setup.sh            build deps only (make run)
#   scripts/setup.sh --test     plus test deps: node clients, package tools
#   scripts/setup.sh --fuzz     plus clang and libFuzzer (make fuzz only; make test uses g++)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
want_test=0
want_fuzz=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--fuzz" ] && want_fuzz=1

# hiredis + msgpack-c: the Redis cluster link (host/cluster, docs/cluster.md).
pkgs=(g++ make cmake pkg-config file libpoco-dev libyaml-cpp-dev libssl-dev libboost-dev libcppunit-dev openssl
      libhiredis-dev libmsgpack-cxx-dev)
if [ $want_test = 1 ]; then
  # redis-server: the cluster tests start their own on a free loopback port.
  pkgs+=(nodejs npm rpm dpkg-dev curl adduser redis-server)
  # The dashboard test drives Debian's chromium headless (puppeteer-core from tests/package.json).
  pkgs+=(chromium fonts-liberation)
fi
if [ $want_fuzz = 1 ]; then
  pkgs+=(clang libclang-rt-14-dev libfuzzer-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from elsewhere (a newer node on the PATH is fine).
  case $p in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  # Without `update` first, a fresh image can "install" nothing and still exit 0.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ $want_test = 1 ]; then
  if [ ! -d "$here/tests/node_modules/socket.io-client" ] || [ ! -d "$here/tests/node_modules/puppeteer-core" ] || [ "$here/tests/package-lock.json" -nt "$here/tests/node_modules/.package-lock.json" ]; then
    echo "setup: installing test clients from npm"
    (cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

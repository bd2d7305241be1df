#!/usr/bin/env bash
# Proves the README's first command on a machine without libpcap-dev or Node's headers:
# in a scratch clone, inside a private mount namespace where /usr/include/pcap and
# /usr/include/node are hidden behind empty folders, `npm ci && npm start` must succeed and print
# the demo verdict, and live capture must exit 2 naming what to install. Needs root (unshare -m).
# Prints "fresh install: ok" or "fresh install: FAILED: <why>" and exits accordingly.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/tapwire-fresh.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "fresh install: FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "fresh install: skipped: needs root for unshare -m"; exit 0; }
git clone -q "$src" "$tmp/tapwire" || fail "git clone"
mkdir -p "$tmp/empty" "$tmp/home"

# What a new user's shell has: no npm_config_nodedir, a home without node-gyp's header cache.
unshare -m bash -c '
  set -e
  mount --make-rprivate /
  for d in /usr/include/pcap /usr/include/node; do [ -d "$d" ] && mount --bind "$1/empty" "$d"; done
  [ ! -e /usr/include/pcap/pcap.h ] && [ ! -e /usr/include/node/node.h ]
  # Node resolves modules up the tree: a node_modules above the clone (a /tmp/node_modules left by
  # someone) would lend it a built cap. A new user has none there.
  a=$(dirname "$1")
  while :; do
    if [ -e "$a/node_modules" ]; then mount --bind "$1/empty" "$(readlink -f "$a/node_modules")"; fi
    [ "$a" = / ] && break
    a=$(dirname "$a")
  done
  cd "$1/tapwire"
  env -u npm_config_nodedir HOME="$1/home" npm ci --no-audit --no-fund >"$1/ci.log" 2>&1
  env -u npm_config_nodedir HOME="$1/home" npm start >"$1/start.out" 2>"$1/start.err"
  set +e
  node dist/cli/main.js agent --interface lo >/dev/null 2>"$1/agent.err"
  echo $? >"$1/agent.status"
' _ "$tmp" || { tail -20 "$tmp/ci.log" "$tmp/start.err" 2>/dev/null; fail "npm ci && npm start did not succeed without libpcap-dev and Node headers"; }

grep -q '^verdict: FAIL' "$tmp/start.out" || fail "npm start printed no demo verdict"
grep -q '^Next' "$tmp/start.out" || fail "npm start printed no next steps"
[ ! -e "$tmp/tapwire/node_modules/cap/build/Release/cap.node" ] || fail "cap was built: the headers were not hidden"
[ "$(cat "$tmp/agent.status")" = 2 ] || fail "tapwire agent without cap exited $(cat "$tmp/agent.status"), not 2"
grep -q "live capture needs the optional 'cap' module" "$tmp/agent.err" || fail "tapwire agent without cap said: $(cat "$tmp/agent.err")"
echo "fresh install: ok ($(grep -c . "$tmp/start.out") lines from npm start; agent: $(head -1 "$tmp/agent.err"))"

#!/usr/bin/env bash
# Re-records every capture in pcaps/ from real traffic on loopback (127.0.0.0/8 only).
#
#   bash scripts/record-pcaps.sh            (or: npm run record-pcaps)
#   ONLY=verify bash scripts/record-pcaps.sh    (only some groups, comma-separated: http1, demo,
#                                                http2, grpc, postgres, verify, loss, tls, redis, mysql,
#                                                cache; default: all)
#
# Writes pcaps/http1/*.pcap (the HTTP/1 decoder fixtures, see scripts/record/http1.mjs),
# pcaps/demo/demo.pcap + pcaps/demo/demo-fixed.pcap (the demo stories, see scripts/record/demo/),
# pcaps/http2, pcaps/grpc, pcaps/postgres (below), and pcaps/verify/*.pcap (one story per verifier
# detector, see scripts/record/stories.mjs, and load-cycle.pcap, see scripts/record/load.mjs), and
# pcaps/loss/*.pcap (responses that name their requests, for `npm run loss`; scripts/record/loss.mjs).
# Needs root (tcpdump on lo, a server on port 80) and these Debian packages:
#   tcpdump, tshark (tshark, editcap, capinfos), postgresql (15), nghttp2-client (nghttp),
#   nghttp2-proxy (nghttpx, the h2c-upgrade server).
# Idempotent: every run starts a fresh throwaway PostgreSQL cluster in a temp dir and overwrites
# the captures. All child processes and the temp dir are cleaned up on exit, even on failure.
set -euo pipefail

cd "$(dirname "$0")/.."
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_HOST=127.0.0.4
PG_PORT=${DEMO_PG_PORT:-5432}

die() { echo "record-pcaps: $*" >&2; exit 1; }

GROUPS_ALL="http1 demo http2 grpc postgres verify loss tls redis mysql cache"
ONLY=${ONLY:-all}
for g in ${ONLY//,/ }; do
  [ "$g" = all ] || [[ " $GROUPS_ALL " == *" $g "* ]] || die "ONLY=$ONLY: unknown group '$g' (groups: $GROUPS_ALL)"
done
# want GROUP: is GROUP among those to record?
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ---- preflight -------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (tcpdump on lo, a server on port 80)"
missing=()
for t in node tcpdump tshark capinfos editcap nghttp nghttpx h2load wrk su; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
for t in initdb pg_ctl psql; do
  [ -x "$PGBIN/$t" ] || missing+=("$PGBIN/$t")
done
if [ ${#missing[@]} -gt 0 ]; then
  die "missing tool(s): ${missing[*]}
  install with: apt-get install -y tcpdump tshark postgresql nghttp2-client nghttp2-proxy wrk"
fi
id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install -y postgresql)"
[ -d node_modules/pg ] || die "node_modules/pg missing: run npm ci first"
[ -d node_modules/@grpc/grpc-js ] && [ -d node_modules/@grpc/proto-loader ] && [ -d node_modules/protobufjs ] \
  || die "node_modules/@grpc/grpc-js, @grpc/proto-loader or protobufjs missing: run npm ci first"

# ---- temp dir, cleanup -----------------------------------------------------------------------
TMP=$(mktemp -d /tmp/tapwire-record.XXXXXX)
chmod 755 "$TMP"
PGDIR=$TMP/pg

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # child processes of this script (node recorders, and through them tcpdump and the servers)
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    su postgres -c "$PGBIN/pg_ctl -D $PGDIR/data -m immediate stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
  rm -f pcaps/http1/*.pcap.tmp pcaps/demo/*.pcap.tmp
  rm -f pcaps/http2/*.pcap.tmp pcaps/grpc/*.pcap.tmp pcaps/verify/*.pcap.tmp pcaps/loss/*.pcap.tmp
  [ $rc -eq 0 ] || echo "record-pcaps: FAILED (exit $rc)" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a step in the background and wait for it, so a signal to this script runs cleanup at once
# (bash defers traps until a foreground command ends) and cleanup can kill the step.
run() { "$@" & wait $!; }

# ---- HTTP/1 fixtures -------------------------------------------------------------------------
if want http1; then
  mkdir -p pcaps/http1
  run node scripts/record/http1.mjs pcaps/http1
  # A small slice of the benchmark's wrk mix: ordinary traffic the verifiers must stay quiet on.
  rm -f pcaps/http1/mix.pcap
  run node bench/record.mjs http1 --min-mb 1 --out pcaps/http1/mix.pcap
fi

# ---- demo and verifier stories: throwaway PostgreSQL 15 cluster on 127.0.0.4:$PG_PORT ---------
start_shop_db() {
  mkdir -p "$PGDIR" && chown postgres "$PGDIR"
  su postgres -c "$PGBIN/initdb -D $PGDIR/data -A trust -U postgres --no-sync" >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
  # initdb's pg_hba.conf trusts 127.0.0.1/32 only; the services connect from 127.0.0.2, 127.0.0.20 ...
  echo "host all all 127.0.0.0/8 trust" >>"$PGDIR/data/pg_hba.conf"
  su postgres -c "$PGBIN/pg_ctl -D $PGDIR/data -l $PGDIR/log -w -o \"-c listen_addresses=$PG_HOST -p $PG_PORT -k $PGDIR -c ssl=off -c fsync=off\" start" >/dev/null \
    || { cat "$PGDIR/log" >&2; die "PostgreSQL did not start on $PG_HOST:$PG_PORT"; }
  # seeding goes through the Unix socket, before and outside the captures
  su postgres -c "$PGBIN/psql -q -X -v ON_ERROR_STOP=1 -h $PGDIR -p $PG_PORT -d postgres -c 'CREATE DATABASE shop'" >/dev/null
  for seed in scripts/record/demo/seed.sql scripts/record/stories/seed.sql; do
    su postgres -c "$PGBIN/psql -q -X -v ON_ERROR_STOP=1 -h $PGDIR -p $PG_PORT -d shop" <"$seed" >/dev/null
  done
}
if want demo || want verify; then start_shop_db; fi

if want demo; then
  mkdir -p pcaps/demo
  DEMO_PG_PORT=$PG_PORT run node scripts/record/demo.mjs pcaps/demo
fi
# pcaps/verify/*.pcap: the verifier stories (scripts/record/stories.mjs, scripts/record/stories/), one
#   capture per detector, services on 127.0.0.20-35; n-plus-one also uses this cluster. Each capture is
#   checked with tshark.
if want verify; then
  mkdir -p pcaps/verify
  rm -f pcaps/verify/*.pcap.tmp
  DEMO_PG_PORT=$PG_PORT run node scripts/record/stories.mjs pcaps/verify
  # load-cycle.pcap: wrk, 8 keep-alive connections cycling five paths, /fail always 503, on
  #   127.0.0.36:8080 (scripts/record/load.mjs): load the retry detector must not read as retries.
  run node scripts/record/load.mjs pcaps/verify
  # redis-stories, mysql-stories, mysql-slap: the detectors on Redis and MySQL (issue 19; its own
  #   redis-server and MariaDB, services on 127.0.0.40-43; needs mariadbd, mysqlslap).
  run node scripts/record/stories-cache-db.mjs pcaps/verify
fi

# ---- HTTP/2 and gRPC fixtures (h2c on 127.0.0.1) ---------------------------------------------
# pcaps/http2/*.pcap: node:http2 servers and clients, h2load, a hand-framed client for >16 KiB frames;
#   ports 18201-18205 (see scripts/record/http2.mjs); mid-connection.pcap is cut from interleaved.pcap.
# pcaps/grpc/*.pcap + pcaps/grpc/shop.proto: @grpc/grpc-js servers and clients (scripts/record/grpc.mjs,
#   scripts/record/grpc/), ports 18301-18309. Decode with tshark -d tcp.port==PORT,http2.
# Each recorder checks its captures with tshark and fails if a case does not show what it is for.
if want http2; then
  mkdir -p pcaps/http2
  run node scripts/record/http2.mjs pcaps/http2
fi
if want grpc; then
  mkdir -p pcaps/grpc
  run node scripts/record/grpc.mjs pcaps/grpc
fi

# ---- PostgreSQL fixtures (pcaps/postgres/*.pcap, see scripts/record/postgres.mjs) -------------
# The recorder runs its own throwaway PostgreSQL 15 cluster (initdb in a temp dir; pg_hba adds md5 and
# scram-sha-256 users), seeds it over the Unix socket, and restarts it on one port per capture on
# 127.0.0.1: 18401 pg-client, 18402 pg-pipeline (raw v3 client), 18403 psql, 18404 md5-auth,
# 18405 scram-auth, 18406 cancel, 18407 pgbench-simple, 18408 pgbench-extended. mysql-on-5432.pcap is a
# synthetic MySQL handshake on 127.0.0.1:5432 (no MySQL server here; the demo cluster above listens on
# 127.0.0.4 only). Decode with tshark -d tcp.port==PORT,pgsql; each capture is checked with tshark.
if want postgres; then
  [ -x "$PGBIN/pgbench" ] || die "missing $PGBIN/pgbench (apt-get install -y postgresql)"
  mkdir -p pcaps/postgres
  rm -f pcaps/postgres/*.pcap.tmp
  PGBIN=$PGBIN run node scripts/record/postgres.mjs pcaps/postgres
fi

# ---- Redis fixtures (pcaps/redis/*.pcap, see scripts/record/redis.mjs) --------------------------
# Debian's redis-server, one throwaway server per capture on 127.0.0.1.
if want redis; then
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || die "missing redis-server/redis-cli (apt-get install -y redis-server redis-tools)"
  mkdir -p pcaps/redis
  rm -f pcaps/redis/*.pcap.tmp
  run node scripts/record/redis.mjs pcaps/redis
fi

# ---- MySQL fixtures (pcaps/mysql/*.pcap, see scripts/record/mysql.mjs) --------------------------
# Debian's mariadbd in a throwaway data dir, a user with a real password.
if want mysql; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || die "missing mariadbd (apt-get install -y mariadb-server mariadb-client)"
  mkdir -p pcaps/mysql
  rm -f pcaps/mysql/*.pcap.tmp
  run node scripts/record/mysql.mjs pcaps/mysql
fi

# ---- cache demo (pcaps/demo/cache*.pcap, pcaps/redis/redis-benchmark.pcap, see scripts/record/cache-demo.mjs) ----
# order-api 127.0.0.60:8096 (ioredis, mysql2), redis-server 127.0.0.61:18641 (:18642 for redis-benchmark),
# MariaDB 127.0.0.62:18541: the cache whose key holds a timestamp, and its fix.
if want cache; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || die "missing mariadbd (apt-get install -y mariadb-server mariadb-client)"
  mkdir -p pcaps/demo pcaps/redis
  rm -f pcaps/demo/cache*.pcap.tmp pcaps/redis/redis-benchmark.pcap.tmp
  run node scripts/record/cache-demo.mjs pcaps
fi

# ---- loss and reordering captures (pcaps/loss/*.pcap, see scripts/record/loss.mjs) --------------
# Every response names its request (an id echoed in a header and the body, a gRPC reply field, a
# PostgreSQL row), so `npm run loss` can check pairing after dropping or reordering segments:
# http1 18501, http2 18502, grpc 18503, postgres 18504 (its own throwaway cluster), on 127.0.0.1.
if want loss; then
  mkdir -p pcaps/loss
  rm -f pcaps/loss/*.pcap.tmp
  PGBIN=$PGBIN run node scripts/record/loss.mjs pcaps/loss
fi

# ---- TLS handshakes (pcaps/tls/*.pcap, see scripts/record/tls.mjs) ------------------------------
# openssl s_server/s_client, curl, node:https and node:http2 on 127.0.0.21-28: TLS 1.2 and 1.3,
# resumed by session id, ticket and PSK, a HelloRetryRequest, and plain HTTP on 443 (negative case).
if want tls; then
  rm -f pcaps/tls/*.pcap.tmp
  run node scripts/record/tls.mjs pcaps/tls
fi

echo "record-pcaps: done"

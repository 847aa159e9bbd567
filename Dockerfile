# memshard: a two-stage image. The build stage has the devDependencies (TypeScript) and compiles
# lib/ and workers/; the runtime stage has only the compiled output, the production dependencies
# and package.json (lib/version.ts reads its version from it), and runs as the unprivileged `node`
# user of the official Node.js image.
#   docker build -t memshard .
#   docker run --rm -p 11211:11211 -p 9150:9150 memshard -m 256 -t 4 -v
# spec/deploy.test.ts replays these steps without a Docker engine (see README, "Running a cluster").

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (npm run build && tap build) would run before the sources are here;
# the build is the next step.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY lib lib
COPY workers workers
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` needs tsc, a devDependency.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# dist/lib imports ../workers/serve.js and ../../workers/socket-dup.js at run time: both trees.
COPY --from=build /src/dist/lib dist/lib
COPY --from=build /src/dist/workers dist/workers
COPY deploy/healthcheck.mjs healthcheck.mjs
USER node
# 11211: memcached protocols (TCP; UDP only with -U). 9150: Prometheus /metrics.
EXPOSE 11211 9150
# `version` over TCP to 127.0.0.1:11211 (another -p: set MEMSHARD_PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# SIGTERM (like SIGINT) closes the listeners and exits 0, as memcached does.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/lib/cli.js"]
CMD ["-p", "11211", "-m", "64", "-t", "2", "-v"]

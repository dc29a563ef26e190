# syntax=docker/dockerfile:1
# Warden's container image. Multi-stage: build with dev dependencies, run with
# production dependencies only, as a non-root user, on the current Node LTS.
# `docker build -t warden .` from the repository root; guide: docs/operations.md.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY examples ./examples
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# WARDEN_LISTEN overrides server.listen of whatever config runs: a container
# listens on every interface. The admin listener (metrics, admin API) stays on
# loopback unless WARDEN_ADMIN_LISTEN says otherwise (e.g. 0.0.0.0:9090 for a
# Prometheus on a private network).
ENV NODE_ENV=production \
    WARDEN_DATA_DIR=/var/lib/warden \
    WARDEN_CONFIG=/app/deploy/gateway.yaml \
    WARDEN_LISTEN=0.0.0.0:8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json LICENSE gateway.schema.json ./
COPY policies ./policies
COPY deploy/gateway.yaml ./deploy/gateway.yaml
RUN mkdir -p /var/lib/warden && chown node:node /var/lib/warden
USER node
EXPOSE 8080 9090
# Liveness of the agent listener (WARDEN_LISTEN), without curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/src/healthcheck.js"]
# Node with Warden's V8 flags (a fixed 8 MiB semi-space, src/cli/node-flags.ts;
# docs/performance.md, "Memory"), the same the bin's shebang gives it: one process,
# PID 1, that handles SIGTERM itself (no relay that re-executes node; #17).
ENTRYPOINT ["node", "--min-semi-space-size=8", "--max-semi-space-size=8", "--heap-growing-percent=20", "dist/src/cli.js"]
# The production config (deploy/gateway.yaml): every value comes from the
# environment, and start-up names each variable that is missing. Mount your
# own file and point WARDEN_CONFIG at it to run something else.
CMD ["start"]

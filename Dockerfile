# syntax=docker/dockerfile:1
# ^ BuildKit front end: needed for the cache mount on `npm ci` below.
#
# Two stages: `build` has the compiler toolchain and dev dependencies (TypeScript), the runtime stage only the
# compiled JavaScript and production node_modules.
#
#   docker build -t authz .
#   docker run --rm authz node dist/src/cli.js --help      # the `authz` CLI, from the same image
#
# Configuration is environment variables only (src/config.ts, .env.example); signing keys are files in /app/keys
# (keys/README.md). See docker-compose.yml for PostgreSQL and Redis next to it.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# bcrypt is a native addon: when no prebuilt binary matches, node-gyp compiles it and needs python3, make and g++.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# Manifests first, so the dependency layer is reused while only source files change. patches/ too: npm ci's
# postinstall applies them to node_modules (patch-package; patches/README.md says what each one fixes).
COPY package.json package-lock.json ./
COPY patches ./patches
# The cache mount keeps npm's download cache between builds without putting it in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

COPY . .
# tsconfig.build.json has rootDir "." and includes src and migrations, so this writes dist/src/… and
# dist/migrations/… (the compiled server imports its migrations as ../../migrations/index.js).
RUN npm run build
# Drop TypeScript, jest and the rest of the dev dependencies; the native bcrypt build stays.
RUN npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
WORKDIR /app

# MALLOC_ARENA_MAX and the V8 flags in CMD keep a worker's memory near what it holds (src/worker-runtime.ts says
# what each one saved); with WEB_CONCURRENCY > 1 the workers inherit both.
ENV NODE_ENV=production \
    PORT=3000 \
    MALLOC_ARENA_MAX=2

# The official image's unprivileged user (uid 1000). Everything is copied owned by root, so the server cannot
# modify its own code; only keys/ belongs to `node`, because scheduled rotation (KEY_ROTATION_INTERVAL) and
# `authz keys rotate|prune` write there.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# nunjucks templates, not compiled: src/interaction/views.ts looks for views/layout.njk in the folders above the
# running module, and /app/views is the one above dist/src/interaction/.
COPY --from=build /app/views ./views
RUN mkdir -p /app/keys && chown node:node /app/keys
# Signing keys and cookie secrets live outside the image and must outlive the container (production never
# generates a key, and losing one invalidates every token it signed; keys/README.md). Declared after the chown
# so a new named volume starts out owned by `node`. A bind mount (./keys:/app/keys) keeps the host's ownership:
# make it readable (and, for rotation, writable) by uid 1000.
VOLUME /app/keys

USER node
EXPOSE 3000

# Discovery exercises the whole stack (routing, provider, key ring) without a client or a database write. Plain
# http on loopback: TLS ends at the proxy in front. Node's own fetch, because the slim image has no curl or wget.
# The start period covers the database migrations the server runs before it listens. The port is the one the
# server reads: a PORT set in .env moves both.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 3000}/.well-known/openid-configuration`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form, so node is PID 1 and receives SIGTERM directly (main.ts shuts down cleanly on it, and forwards
# SIGTERM/SIGINT/SIGHUP to its workers when WEB_CONCURRENCY > 1). `node`, not `npm start`: that runs tsx on the
# TypeScript sources and npm would sit between the signal and the server.
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=30", "dist/src/main.js"]

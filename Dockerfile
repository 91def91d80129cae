# bgserve: one image for the blue and green instances and for the controller.
# Builds offline-friendly on BuildKit and on the classic builder alike: no `# syntax=` line (BuildKit would
# fetch a frontend image from Docker Hub) and no `RUN --mount` (the classic builder refuses it).
# test/packaging/docker.test.ts builds it on a real engine with both; test/packaging/image.test.ts replays it
# natively (its COPY lines are the list of what goes in, its RUN lines run as written: keep them plain sh).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: dev dependencies + tsc -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node's postinstall downloads CUDA libraries; the CPU runtime ships inside the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# bin/bgserve puts the CLI on PATH; .bgserve/ is the controller's state directory (token, release store).
RUN npm run build && chmod +x dist/cli/main.js && mkdir -p bin .bgserve && ln -sf ../dist/cli/main.js bin/bgserve

# ---- runtime: production dependencies, compiled code, the default bundle ------------------------------
FROM ${NODE_IMAGE} AS runtime
# Set by BuildKit (amd64 | arm64; the classic builder leaves the default): only that platform's onnxruntime
# binaries are kept.
ARG TARGETARCH=amd64
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    PATH=/app/bin:$PATH
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/prune-onnxruntime.sh scripts/ensure-token.mjs ./scripts/
# npm's download cache (~100 MB, onnxruntime's tarball) is dropped in the same layer.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm -rf "$HOME/.npm" \
 && sh scripts/prune-onnxruntime.sh "$TARGETARCH"
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build --chown=node:node /app/.bgserve ./.bgserve
COPY models/wine-quality/1.0.0 ./models/wine-quality/1.0.0
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8000/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["bgserve"]
CMD ["serve", "--bundle", "models/wine-quality/1.0.0", "--host", "0.0.0.0", "--port", "8000"]

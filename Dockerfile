# ftpsd container image: explicit FTPS on 2121, passive data ports 50000-50100.
#   docker build -t ftpsd .
#   docker run -d --name ftpsd -p 2121:2121 -p 50000-50100:50000-50100 \
#     -e FTPSD_PASV_EXTERNAL_ADDRESS=203.0.113.7 \
#     -v ftpsd-config:/app/config -v ftpsd-certs:/app/certs -v ftpsd-data:/app/data ftpsd
# See docs/admin-guide.md ("Container") and compose.yaml.

# --- build: full dependencies, compile TypeScript, then drop the dev dependencies --------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
# npm ci runs the package's "prepare" script, which compiles src/ into dist/.
RUN npm ci --no-audit --no-fund
RUN npm prune --omit=dev --no-audit --no-fund

# --- runtime: production dependencies and the compiled code only, as the unprivileged "node" user ---------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    FTPSD_LISTEN_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config/ftpsd.example.yaml ./config/ftpsd.example.yaml
RUN mkdir -p config certs data && chown -R node:node config certs data
USER node
# config/: ftpsd.yaml (optional) and users.yaml; certs/: self-signed or ACME certificates; data/: user homes.
VOLUME ["/app/config", "/app/certs", "/app/data"]
EXPOSE 2121 50000-50100
# GET /healthz when metrics are enabled, else the 220 greeting on the control port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "dist/ops/healthcheck.js"]
# SIGTERM stops gracefully: give `docker stop` more than shutdown.graceMs (30 s by default): docker stop -t 40.
STOPSIGNAL SIGTERM
# --max-semi-space-size: see "Node.js runtime flag" in docs/admin-guide.md.
ENTRYPOINT ["node", "--max-semi-space-size=4", "bin/ftpsd.js"]
CMD ["serve"]

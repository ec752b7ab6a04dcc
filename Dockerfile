# The runtime controller image (IMAGES.controller). Also provides `kubeflex-wait-for-apiserver` for hook Jobs and
# `kubeflex-materializer` (the hosting install's materializer Deployment) and `kubeflex-activator` (its activator).
# Build: docker build -t ghcr.io/cdk8s-kubeflex/controller:0.1.0 .
FROM docker.io/library/node:20.19.5-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json main.ts ./
COPY lib lib
COPY imports imports
COPY bench bench
COPY scripts scripts
# cdk8s, cdk8s-plus-28 and constructs are peer dependencies of the library (a consumer's app brings its own); the
# image's materializer and kflex need them, so they are kept at the versions the lockfile pins.
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --ignore-scripts \
 && npm install --no-save --ignore-scripts --no-audit --no-fund \
      $(node -p "['cdk8s','cdk8s-plus-28','constructs'].map((p) => p + '@' + require('./package-lock.json').packages['node_modules/' + p].version).join(' ')")

FROM docker.io/library/node:20.19.5-bookworm-slim
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/build/lib build/lib
COPY --from=build /src/build/imports build/imports
RUN chmod 0755 build/lib/controller/main.js build/lib/controller/wait-for-apiserver.js build/lib/materializer/main.js \
      build/lib/activator/main.js \
 && ln -s /app/build/lib/controller/main.js /usr/local/bin/kubeflex-controller \
 && ln -s /app/build/lib/materializer/main.js /usr/local/bin/kubeflex-materializer \
 && ln -s /app/build/lib/activator/main.js /usr/local/bin/kubeflex-activator \
 && ln -s /app/build/lib/controller/wait-for-apiserver.js /usr/local/bin/kubeflex-wait-for-apiserver
# The uid the hosting Deployment runs as (restricted pod security); numeric so runAsNonRoot can verify it.
USER 65532:65532
ENV NODE_ENV=production
ENTRYPOINT ["kubeflex-controller"]

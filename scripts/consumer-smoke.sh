#!/usr/bin/env bash
# Proves the package is consumable: packs it, installs the tarball into a throwaway project and synthesizes with it
# by package name. Uses the local npm cache, so after the first run it needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
# The peer dependencies at the versions our lockfile pins.
peers=$(node -p "Object.keys(require('./package.json').peerDependencies).map((p) => p + '@' + require('./package-lock.json').packages['node_modules/' + p].version).join(' ')")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm run --silent build
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
npm init -y >/dev/null
# A cdk8s project already has cdk8s, cdk8s-plus-28 and constructs: they are our peer dependencies, at the versions
# our lockfile pins, and the install must take them as they are (no second copy).
npm install --silent --no-audit --no-fund --prefer-offline $peers >/dev/null
npm install --silent --no-audit --no-fund --prefer-offline "./$tarball" >/dev/null
if [ -d node_modules/cdk8s-kubeflex/node_modules/cdk8s ] || [ -d node_modules/cdk8s-kubeflex/node_modules/constructs ]; then
  echo "consumer-smoke: FAILED: a second copy of cdk8s/constructs was installed under cdk8s-kubeflex" >&2
  exit 1
fi
cat > consumer.js <<'JS'
const { App, Testing } = require('cdk8s');
const { KubeflexHosting, K8sControlPlane, KubeflexConfigError } = require('cdk8s-kubeflex');
const app = Testing.app();
const hosting = new KubeflexHosting(app, 'hosting');
const cp = new K8sControlPlane(app, 'tenant-a', { hosting });
const kinds = Testing.synth(cp).map((o) => o.kind).join(',');
if (!kinds.includes('ControlPlane') || !kinds.includes('Deployment')) throw new Error('unexpected output: ' + kinds);
try { new K8sControlPlane(app, 'BAD', { hosting }); throw new Error('no validation'); }
catch (e) { if (!(e instanceof KubeflexConfigError)) throw e; }
console.log('consumer-smoke: ok (installed by name from the packed tarball, synthesized, validated)');
JS
node consumer.js

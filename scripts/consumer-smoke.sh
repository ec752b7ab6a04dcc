#!/usr/bin/env bash
# Proves the package is consumable: packs it, installs the tarball into a throwaway project and synthesizes with it
# by package name. Uses the local npm cache, so after the first run it needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm run --silent build
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --prefer-offline "./$tarball" >/dev/null
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

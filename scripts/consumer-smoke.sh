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
# The README's code, as `cdk8s synth` runs it: app.synth() of a KubeflexApp writes the installable layout.
cat > readme-app.js <<'JS'
const { KubeflexApp, KubeflexHosting, K8sControlPlane } = require('cdk8s-kubeflex');
const app = new KubeflexApp();
const hosting = new KubeflexHosting(app, 'hosting', { domain: 'example.com' });
new K8sControlPlane(app, 'team-a', { hosting });
app.synth();
JS
node readme-app.js
for f in dist/00-base/hosting.k8s.yaml dist/00-base/team-a.k8s.yaml dist/hosting.k8s.yaml dist/team-a.k8s.yaml; do
  [ -s "$f" ] || { echo "consumer-smoke: FAILED: app.synth() did not write $f" >&2; exit 1; }
done
grep -q '^kind: CustomResourceDefinition' dist/00-base/hosting.k8s.yaml || { echo "consumer-smoke: FAILED: no CRD in 00-base" >&2; exit 1; }
if grep -q '^kind: CustomResourceDefinition' dist/hosting.k8s.yaml; then echo "consumer-smoke: FAILED: CRD outside 00-base" >&2; exit 1; fi
echo "consumer-smoke: ok (the README's app.synth() wrote dist/00-base/ and one file per chart)"

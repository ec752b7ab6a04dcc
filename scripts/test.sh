#!/usr/bin/env bash
# The one test command (`npm test`, also run by .ci/run): prepares the real binaries, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if bash scripts/prepare-binaries.sh; then
  export KFLEX_BIN_DIR="${KFLEX_CACHE:-$HOME/.cache/cdk8s-kubeflex}/bin"
else
  echo "################################################################################" >&2
  echo "## REAL-CLUSTER TESTS WILL BE SKIPPED: kube-apiserver/kine could not be built. ##" >&2
  echo "################################################################################" >&2
fi

# The real node's Debian packages (test/node); without them only the node suites are skipped, loudly.
bash scripts/prepare-node.sh || true

npm run --silent build
npm run --silent lint
bash scripts/consumer-smoke.sh
bash scripts/fresh-clone.sh
npx jest --ci "$@"

#!/usr/bin/env bash
# Builds the real binaries the test suite runs from the Go module proxy into a cache outside the repository:
# the control plane (kube-apiserver, kube-controller-manager, kine) and, for the real node of test/node, kubelet,
# kube-proxy, kube-scheduler, kubectl, CoreDNS and a pause program. Skips whatever already has the right version.
# v1.32.2 is the newest 1.32 patch whose staging modules are all on the module proxy reachable here.
# Cost: the first build takes ~15-25 min on 2 cores (kube-apiserver dominates); later runs take seconds.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.32.2}"
KINE_VERSION="${KINE_VERSION:-v0.17.5}"
CACHE="${KFLEX_CACHE:-$HOME/.cache/cdk8s-kubeflex}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

if ! command -v go >/dev/null 2>&1; then
  echo "prepare-binaries: NO GO TOOLCHAIN FOUND - cannot build kube-apiserver/kine; real-cluster tests will be SKIPPED" >&2
  exit 3
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

have_version() { # binary expected-substring
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q -- "$2"
}

# build_k8s VERSION DIR CMDS...: builds the given commands of k8s.io/kubernetes at VERSION into DIR through a
# wrapper go.mod that pins every staging module to the matching v0.x release.
build_k8s() {
  local version="$1" dir="$2"; shift 2
  local missing="" c
  mkdir -p "$dir"
  for c in "$@"; do
    if [ "$c" = kubectl ]; then
      { [ -x "$dir/kubectl" ] && "$dir/kubectl" version --client 2>/dev/null | grep -q -- "$version"; } || missing="$missing $c"
    else have_version "$dir/$c" "$version" || missing="$missing $c"; fi
  done
  if [ -z "$missing" ]; then
    echo "prepare-binaries: $* $version present"
    return
  fi
  echo "prepare-binaries: building$missing $version (first time ~10-30 min, kube-apiserver and kubelet dominate)"
  local minor="${version#v1.}"; minor="${minor%%.*}"
  local staging="v0.${version#v1.}"
  local wrap="$CACHE/kbuild-$version"
  mkdir -p "$wrap"
  {
    echo "module local/kbuild"
    echo "go 1.23.0"
    echo "godebug default=go1.23"
    echo "require k8s.io/kubernetes $version"
    echo "replace ("
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap \
      code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib \
      dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
      kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver; do
      echo "	k8s.io/$m => k8s.io/$m $staging"
    done
    echo ")"
  } > "$wrap/go.mod"
  (cd "$wrap" && go build -trimpath -o "$dir/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean \
      -X k8s.io/client-go/pkg/version.gitVersion=$version" \
    $(for c in $missing; do echo "k8s.io/kubernetes/cmd/$c"; done))
}

build_k8s "$K8S_VERSION" "$BIN" kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
# The second supported minor (lib/versions.ts SUPPORTED_KUBERNETES_VERSIONS): only the tenant control plane's two
# binaries, in a sub-directory named after the version, for the test that boots a tenant at each minor.
# v1.33.13 is a 1.33 patch whose staging modules are all on the module proxy reachable here.
for v in ${K8S_EXTRA_VERSIONS:-v1.33.13}; do
  build_k8s "$v" "$BIN/$v" kube-apiserver kube-controller-manager
done

if have_version "$BIN/kine" "$KINE_VERSION" || [ "$(cat "$BIN/.kine-version" 2>/dev/null)" = "$KINE_VERSION" ] && [ -x "$BIN/kine" ]; then
  echo "prepare-binaries: kine $KINE_VERSION present"
else
  echo "prepare-binaries: building kine $KINE_VERSION"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION" "github.com/k3s-io/kine@$KINE_VERSION"
  echo "$KINE_VERSION" > "$BIN/.kine-version"
fi

COREDNS_VERSION="${COREDNS_VERSION:-v1.11.4}"
if [ -x "$BIN/coredns" ] && "$BIN/coredns" -version 2>/dev/null | grep -q "CoreDNS-${COREDNS_VERSION#v}"; then
  echo "prepare-binaries: coredns $COREDNS_VERSION present"
else
  echo "prepare-binaries: building coredns $COREDNS_VERSION (~3 min the first time)"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
fi

# The pod sandbox program (stands in for registry.k8s.io/pause): our own source in test/node/pause.
pause_src="$(cd "$(dirname "$0")/.." && pwd)/test/node/pause"
if [ ! -x "$BIN/pause" ] || [ "$pause_src/main.go" -nt "$BIN/pause" ]; then
  (cd "$pause_src" && go build -trimpath -ldflags "-s -w" -o "$BIN/pause" .)
fi

"$BIN/kube-apiserver" --version
echo "prepare-binaries: binaries ready in $BIN"

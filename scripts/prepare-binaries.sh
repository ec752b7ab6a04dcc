#!/usr/bin/env bash
# Builds the real control-plane binaries the test suite runs (kube-apiserver, kube-controller-manager, kine)
# from the Go module proxy into a cache outside the repository. Skips whatever already has the right version.
# v1.32.2 is the newest 1.32 patch whose staging modules are all on the module proxy reachable here.
# Cost: the first build takes ~15-25 min on 2 cores (kube-apiserver dominates); later runs take seconds.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.32.2}"
KINE_VERSION="${KINE_VERSION:-v0.16.4}"
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

if have_version "$BIN/kube-apiserver" "$K8S_VERSION" && have_version "$BIN/kube-controller-manager" "$K8S_VERSION"; then
  echo "prepare-binaries: kube-apiserver and kube-controller-manager $K8S_VERSION present"
else
  echo "prepare-binaries: building kube-apiserver and kube-controller-manager $K8S_VERSION (first time ~15-25 min)"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  staging="v0.${K8S_VERSION#v1.}"
  wrap="$CACHE/kbuild-$K8S_VERSION"
  mkdir -p "$wrap"
  {
    echo "module local/kbuild"
    echo "go 1.23.0"
    echo "godebug default=go1.23"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap \
      code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib \
      dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
      kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver; do
      echo "	k8s.io/$m => k8s.io/$m $staging"
    done
    echo ")"
  } > "$wrap/go.mod"
  (cd "$wrap" && go build -trimpath -o "$BIN/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean \
      -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
fi

if have_version "$BIN/kine" "$KINE_VERSION" || [ "$(cat "$BIN/.kine-version" 2>/dev/null)" = "$KINE_VERSION" ] && [ -x "$BIN/kine" ]; then
  echo "prepare-binaries: kine $KINE_VERSION present"
else
  echo "prepare-binaries: building kine $KINE_VERSION"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION" "github.com/k3s-io/kine@$KINE_VERSION"
  echo "$KINE_VERSION" > "$BIN/.kine-version"
fi

"$BIN/kube-apiserver" --version
echo "prepare-binaries: binaries ready in $BIN"

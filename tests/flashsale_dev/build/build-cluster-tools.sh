#!/usr/bin/env bash
# Builds the local Kubernetes cluster's tools from the Go module proxy into a cache outside the repo:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy, etcd, kwok,
# helm, coredns and containerd (+ its runc shim and ctr), at the versions pinned in versions.env. Each tool lands in $CACHE/bin/<tool>-<version>/ with a .complete
# stamp; a present stamp means a cache hit and nothing is rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
source <(grep -E '^[A-Z0-9_]+=' "$here/versions.env")
cache=${FLASHSALE_CACHE:-$HOME/.cache/flashsale}
work="$cache/work"
mkdir -p "$work"
# Go 1.26 ships in /usr/local/go on these machines; a non-login shell may not have it on PATH.
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
ldflags="-s -w"

log() { printf '[build-cluster-tools] %s\n' "$*" >&2; }
built() { [ -f "$1/.complete" ]; }
finish() { touch "$1/.complete"; log "built $(basename "$1") in $(( $(date +%s) - $2 ))s"; }

# A throwaway main module: k8s.io/kubernetes resolves its staging modules with local replace lines
# that only work in its own repository (kubernetes/kubernetes#79384), so we pin each staging module
# to the matching published v0.X.Y instead.
# The node binaries (kubelet, kube-proxy) share the control plane's `go build`: most packages are
# common, so they cost little on top. The directory name carries KUBERNETES_BUILD_RECIPE, so a cache
# built with another set of binaries is never mistaken for this one (paths.tool_dir reads it too).
build_kubernetes() {
  local name="k8s-$KUBERNETES_VERSION-$KUBERNETES_BUILD_RECIPE"
  local out="$cache/bin/$name" start; start=$(date +%s)
  built "$out" && return 0
  log "building kubernetes $KUBERNETES_VERSION (cold: about 4 min on 2 cores)"
  local dir="$work/$name" staging="v0.${KUBERNETES_VERSION#v1.}"
  rm -rf "$dir" && mkdir -p "$dir" "$out"
  local gomod; gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module flashsale.local/k8sbuild"
    echo "go 1.26.0"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$gomod" | grep -oE 'k8s\.io/[a-z0-9-]+ =>' | sed 's/ =>//' \
      | while read -r m; do echo "  $m => $m $staging"; done
    echo ")"
  } > "$dir/go.mod"
  local major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  local minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  local v="k8s.io/component-base/version"
  (cd "$dir" && go build -trimpath -tags selinux,notest -o "$out/" \
    -ldflags "$ldflags -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=$major -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  finish "$out" "$start"
}

# containerd 2.x for the real nodes, without cgo: the snapshotters that need C libraries are left
# out (the nodes use overlayfs). Version stamped so the CRI reports containerd://<version>.
build_containerd() {
  local out="$cache/bin/containerd-$CONTAINERD_VERSION" start; start=$(date +%s)
  built "$out" && return 0
  log "building containerd $CONTAINERD_VERSION"
  mkdir -p "$out"
  local m="github.com/containerd/containerd/v2"
  GOBIN="$out" go install -trimpath -tags no_btrfs,no_devmapper,no_zfs \
    -ldflags "$ldflags -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=module-proxy" \
    "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$m/cmd/ctr@$CONTAINERD_VERSION"
  finish "$out" "$start"
}

# etcd's server module carries replace lines too; inside a throwaway module they are ignored and
# the published sibling modules are used.
build_etcd() {
  local out="$cache/bin/etcd-$ETCD_VERSION" start; start=$(date +%s)
  built "$out" && return 0
  log "building etcd $ETCD_VERSION"
  local dir="$work/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" "$out"
  printf 'module flashsale.local/etcdbuild\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" > "$dir/go.mod"
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  finish "$out" "$start"
}

# kwok ships its Stage objects only inside its module; the standalone binary needs them in --config.
build_kwok() {
  local out="$cache/bin/kwok-$KWOK_VERSION" start; start=$(date +%s)
  built "$out" && return 0
  log "building kwok $KWOK_VERSION"
  mkdir -p "$out"
  GOBIN="$out" go install -trimpath -ldflags "$ldflags" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  chmod -R u+w "$out"
  mkdir -p "$out/stages"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
               pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cp "$src/$stage.yaml" "$out/stages/"
  done
  finish "$out" "$start"
}

build_helm() {
  local out="$cache/bin/helm-$HELM_VERSION" start; start=$(date +%s)
  built "$out" && return 0
  log "building helm $HELM_VERSION"
  mkdir -p "$out"
  local major=${HELM_VERSION%%.*}
  GOBIN="$out" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  finish "$out" "$start"
}

# CoreDNS compiles in exactly the plugins its plugin.cfg lists (in that order, which is also the
# order a query passes through them): a copy of the module with the list cut to what the cluster's
# DNS uses, then `go generate` (rewrites the plugin imports) and `go build`. Fewer plugins, fewer
# dependencies to compile.
COREDNS_PLUGINS=(bind ready errors hosts kubernetes forward)
build_coredns() {
  local out="$cache/bin/coredns-$COREDNS_VERSION" start; start=$(date +%s)
  built "$out" && return 0
  log "building coredns $COREDNS_VERSION with plugins: ${COREDNS_PLUGINS[*]}"
  local dir="$work/coredns-$COREDNS_VERSION" src
  src=$(cd "$work" && go mod download -json "github.com/coredns/coredns@$COREDNS_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$dir" && cp -r "$src" "$dir" && chmod -R u+w "$dir" && mkdir -p "$out"
  local wanted; wanted=$(IFS='|'; echo "${COREDNS_PLUGINS[*]}")
  grep -E "^($wanted):" "$src/plugin.cfg" > "$dir/plugin.cfg"
  [ "$(wc -l < "$dir/plugin.cfg")" -eq ${#COREDNS_PLUGINS[@]} ] \
    || { log "coredns: a plugin of ${COREDNS_PLUGINS[*]} is not in its plugin.cfg"; exit 1; }
  (cd "$dir" && go generate coredns.go && go build -trimpath -ldflags "$ldflags" -o "$out/coredns" .)
  finish "$out" "$start"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd kwok helm coredns kubernetes containerd)
for t in "${targets[@]}"; do "build_$t"; done

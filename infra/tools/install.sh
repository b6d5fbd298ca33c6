#!/usr/bin/env bash
# The tools of the compose and Kubernetes checks (tests/ops/), pinned, in a cache outside
# the checkout: compose-check (this folder: Docker Compose's own loader, compose-go),
# kustomize and kubeconform built with `go install`, and the CRDs of KEDA,
# the RabbitMQ Cluster Operator and K8ssandra taken from their Go modules (each module's
# config/crd/bases/). Quick when everything is there already; the tests themselves use
# no network. The Kubernetes schemas come from the kubernetes-validate PyPI package
# (pyproject.toml, dev extras).
#
#   infra/tools/install.sh            # install what is missing
#   URNE_TOOLS_DIR=/elsewhere infra/tools/install.sh
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.1    # sigs.k8s.io/kustomize/kustomize/v5 (needs Go >= 1.24)
KUBECONFORM_VERSION=v0.7.0  # github.com/yannh/kubeconform (needs Go >= 1.24)
KEDA_VERSION=v2.17.0        # github.com/kedacore/keda/v2: ScaledObject, TriggerAuthentication
RABBITMQ_OPERATOR_VERSION=v2.16.0     # github.com/rabbitmq/cluster-operator/v2: RabbitmqCluster
K8SSANDRA_OPERATOR_VERSION=v1.26.0    # github.com/k8ssandra/k8ssandra-operator: K8ssandraCluster

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${URNE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/urne/tools}"
BIN="$TOOLS/bin"
CRDS="$TOOLS/crds"
mkdir -p "$BIN" "$CRDS"

# Go may be installed without being on PATH (/usr/local/go).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="/usr/local/go/bin:$PATH"
fi
need_go() {
  command -v go >/dev/null 2>&1 || {
    echo "install.sh: Go is needed to build kustomize and kubeconform (apt-get install golang-go, or https://go.dev/dl/)" >&2
    exit 1
  }
}
# Never a newer toolchain downloaded behind our back; never this checkout's files.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
cd "$TOOLS"

# A tool is installed once per version: the stamp file names the version built.
install_tool() {  # name package version
  local name=$1 package=$2 version=$3
  if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  need_go
  echo "install.sh: building $name $version" >&2
  GOBIN="$BIN" go install "$package@$version"
  echo "$version" > "$BIN/.$name.version"
}
# compose-check, from its module here (go.mod and go.sum pin compose-go and the rest):
# built again when its sources change.
compose_check_version=$(cat "$HERE/compose-check/go.mod" "$HERE/compose-check/go.sum" \
  "$HERE/compose-check/main.go" | sha256sum | cut -c1-16)
if ! [ -x "$BIN/compose-check" ] || \
   [ "$(cat "$BIN/.compose-check.version" 2>/dev/null)" != "$compose_check_version" ]; then
  need_go
  echo "install.sh: building compose-check" >&2
  (cd "$HERE/compose-check" && GOFLAGS=-mod=readonly GOBIN="$BIN" go install .)
  echo "$compose_check_version" > "$BIN/.compose-check.version"
fi
install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
install_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

# CRDs, copied out of the module cache (read-only there) into crds/<module>@<version>/.
fetch_crds() {  # name module version file...
  local name=$1 module=$2 version=$3
  shift 3
  local dest="$CRDS/$name@$version"
  if [ -f "$dest/.complete" ]; then
    return
  fi
  need_go
  echo "install.sh: fetching CRDs of $module $version" >&2
  local dir
  dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -n "$dir" ] || { echo "install.sh: go mod download $module@$version gave no directory" >&2; exit 1; }
  rm -rf "$dest"
  mkdir -p "$dest"
  for file in "$@"; do
    cp "$dir/config/crd/bases/$file" "$dest/$file"
  done
  chmod -R u+w "$dest"
  touch "$dest/.complete"
}
fetch_crds keda github.com/kedacore/keda/v2 "$KEDA_VERSION" \
  keda.sh_scaledobjects.yaml keda.sh_triggerauthentications.yaml
fetch_crds rabbitmq-cluster-operator github.com/rabbitmq/cluster-operator/v2 "$RABBITMQ_OPERATOR_VERSION" \
  rabbitmq.com_rabbitmqclusters.yaml
fetch_crds k8ssandra-operator github.com/k8ssandra/k8ssandra-operator "$K8SSANDRA_OPERATOR_VERSION" \
  k8ssandra.io_k8ssandraclusters.yaml

# The folders of the versions pinned above (older ones may linger): the tests read this.
{
  echo "keda@$KEDA_VERSION"
  echo "rabbitmq-cluster-operator@$RABBITMQ_OPERATOR_VERSION"
  echo "k8ssandra-operator@$K8SSANDRA_OPERATOR_VERSION"
} > "$CRDS/.pinned.tmp"
mv "$CRDS/.pinned.tmp" "$CRDS/pinned"
echo "install.sh: compose-check, kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION and CRDs in $TOOLS" >&2

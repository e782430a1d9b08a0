#!/usr/bin/env bash
# The CycloneDX SBOM of the secret-zero binary, made offline from Cargo.lock and the
# local registry cache, then checked:
#   - valid against the CycloneDX 1.5 JSON schema (strict), with the schemas that ship
#     in cyclonedx-python-lib, so no network;
#   - it describes the `secret-zero` binary, and its components include every crate
#     cargo compiles into that binary for x86_64-unknown-linux-gnu (`cargo tree
#     --edges normal`), each with a cargo purl.
#
#   scripts/sbom.sh [OUT]     # default: target/sbom/secret-zero.cdx.json
#
# Needs: cargo install --locked cargo-cyclonedx --version 0.5.9;
# pip install 'cyclonedx-python-lib[json-validation]==11.12.0' (scripts/test.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "sbom: $*" >&2; exit 1; }

target=x86_64-unknown-linux-gnu
dir=$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out=${1:-$dir/sbom/secret-zero.cdx.json}
mkdir -p "$(dirname "$out")"

cargo cyclonedx --version >/dev/null 2>&1 ||
    die "cargo-cyclonedx is missing: cargo install --locked cargo-cyclonedx --version 0.5.9"
python3 -c 'import cyclonedx.validation.json' 2>/dev/null ||
    die "cyclonedx-python-lib is missing: pip install 'cyclonedx-python-lib[json-validation]==11.12.0'"

# With --describe binaries, cargo-cyclonedx writes NAME_bin.cdx.json beside the
# Cargo.toml of each workspace member that has a binary (the test bed's kube-double
# too); the agent's is moved out, the others removed.
members=(. client tests/support)
trap 'for m in "${members[@]}"; do rm -f "$m"/*_bin.cdx.json; done' EXIT
CARGO_NET_OFFLINE=true cargo cyclonedx --quiet --format json --spec-version 1.5 \
    --target "$target" --no-build-deps --describe binaries
[ -f secret-zero_bin.cdx.json ] || die "cargo cyclonedx wrote no secret-zero_bin.cdx.json"
mv secret-zero_bin.cdx.json "$out"

# The crates compiled into the binary, as name@version, one a line.
cargo tree --locked --offline -p secret-zero --edges normal --target "$target" \
    --prefix none --format '{p}' |
    sed 's/ (.*//; s/ v/@/; s/ .*//' | sort -u > "$out.crates"

python3 - "$out" "$out.crates" <<'PY'
import json, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

path, crates_path = sys.argv[1], sys.argv[2]
text = open(path).read()
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
if error is not None:
    sys.exit(f"sbom: {path} is not valid CycloneDX 1.5: {error}")
bom = json.loads(text)
main = bom["metadata"]["component"]
if main.get("name") != "secret-zero":
    sys.exit(f"sbom: {path} describes {main.get('name')!r}, not secret-zero")

def walk(components):
    for c in components or []:
        yield c
        yield from walk(c.get("components"))

found = {}
for c in walk(bom.get("components")):
    if c.get("type") == "library":
        found[f"{c['name']}@{c['version']}"] = c
expected = set(open(crates_path).read().split()) - {f"secret-zero@{main.get('version')}"}
missing = sorted(expected - set(found))
if missing:
    sys.exit(f"sbom: crates compiled into the binary that the SBOM omits: {missing}")
# cargo-cyclonedx reads `cargo metadata`, which unifies features across the whole
# workspace, dev-dependencies included; a crate only the tests' features pull in (tokio's
# parking_lot, for "full") is listed though the release build leaves it out. Listing
# too much is the safe side of an SBOM; say which.
extra = sorted(set(found) - expected)
no_purl = sorted(k for k, c in found.items() if not c.get("purl", "").startswith("pkg:cargo/"))
if no_purl:
    sys.exit(f"sbom: components without a cargo purl: {no_purl}")
licensed = sum(1 for c in found.values() if c.get("licenses"))
print(f"sbom: {path}: CycloneDX {bom['specVersion']}, schema-valid; {len(found)} components, "
      f"{licensed} with a license: all {len(expected)} crates compiled into the binary"
      + (f", and {len(extra)} that only the tests' features enable: {', '.join(extra)}" if extra else ""))
PY
rm -f "$out.crates"

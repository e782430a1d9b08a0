#!/usr/bin/env bash
# The tests that run programs as another uid, from a fresh clone under a 0700
# directory, as a new user's checkout under /root or a `mktemp -d` folder would be.
#
# Those tests copy what the other uid runs (example programs, their scripts, the
# secret-zero binary) into a directory they create with the permissions that uid needs;
# this proves it: nothing they run as uid 65534 may sit inside the checkout.
#
# Clones HEAD (commit first: uncommitted changes are not in the clone). The clone
# builds into this checkout's target directory (CARGO_TARGET_DIR, or cargo's own
# choice), so only the workspace crates are compiled again.
#
# Usage: scripts/clone-test.sh [extra cargo test arguments, after --]
# Needs: git, root (the tests switch to uid 65534), and what scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "clone-test: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: the tests run programs as uid 65534"

target=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ "$(stat -c %a "$work")" = 700 ] || die "$work is not 0700: the proof needs a private parent"

echo "==> cloning HEAD ($(git rev-parse --short HEAD)) into $work/repo (parent mode 0700)"
git clone --quiet --no-hardlinks "$PWD" "$work/repo"
cd "$work/repo"

export CARGO_TARGET_DIR=$target
echo "==> cargo build --workspace --bins (target $CARGO_TARGET_DIR)"
cargo build --quiet --workspace --bins

# examples: the example programs as another uid (refused with 403);
# agent: curl as another uid against the peer policy;
# serve: the agent itself as another uid, on a directory it cannot write.
echo "==> cargo test --test examples --test agent --test serve"
cargo test --quiet --no-fail-fast --test examples --test agent --test serve -- "$@"
echo "==> the other-uid tests pass from a clone under a 0700 directory"

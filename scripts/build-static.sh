#!/usr/bin/env bash
# The release binary linked statically against glibc: it needs no shared library, so
# it runs in an empty root (a `scratch` image, a bare chroot). Prints its path.
#
#   ./scripts/build-static.sh            # -> target/x86_64-unknown-linux-gnu/release/secret-zero
#   SZ_STATIC_PROFILE=static-check ./scripts/build-static.sh   # the tests' quicker build
#
# The image builds the release profile. The test suite (scripts/test.sh) builds the
# `static-check` profile: the same static linking, without the whole-program
# optimisation that makes a release build many minutes longer on 2 cores.
#
# `-C target-feature=+crt-static` on the gnu target links glibc, libgcc and the C parts
# of ring into the binary. `--target` is spelled out so that RUSTFLAGS reach only the
# target's crates (build scripts and proc macros stay dynamic) and the artifacts land in
# their own directory, apart from the dynamic `target/release` and every dev build.
#
# Name resolution: glibc (2.34 and later) has its `files` and `dns` NSS back ends built
# into libc itself, so a static binary still reads /etc/hosts and asks the nameservers of
# /etc/resolv.conf without loading any libnss_*.so. The linker's warning that
# getaddrinfo "requires at runtime the shared libraries from the glibc version used for
# linking" is about the other back ends (mdns, ldap, systemd-resolved's `resolve`),
# which a static binary cannot use; tests/static_root.rs shows both that work in an
# empty root.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
profile=${SZ_STATIC_PROFILE:-release}
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --profile "$profile" --locked --target "$target" --bin secret-zero "$@" >&2

# The target directory as cargo sees it (CARGO_TARGET_DIR, a config file, or ./target);
# sed rather than a JSON tool, so the script runs in the image's bare builder too.
dir=$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$dir" ] || { echo "build-static: cargo metadata gave no target_directory" >&2; exit 1; }
bin="$dir/$target/$profile/secret-zero"
# ldd says "statically linked" (a static PIE) or "not a dynamic executable"; a library
# it would load shows as "libfoo.so => ...".
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "build-static: $bin still needs shared libraries:" >&2
    ldd "$bin" >&2
    exit 1
fi
echo "$bin"

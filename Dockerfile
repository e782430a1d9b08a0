# syntax=docker/dockerfile:1
#
# The secret-zero image: one binary, no shell, uid 65532. Two flavours:
#
#   docker build -t ghcr.io/secret-zero/secret-zero:0.1.0 .                  # distroless/cc (default)
#   docker build --target static -t ghcr.io/secret-zero/secret-zero:0.1.0-static .  # scratch
#
# Default: gcr.io/distroless/cc-debian12. The binary links glibc dynamically (the gnu
# target; rustls, so no OpenSSL), and the cc image carries exactly glibc, libgcc_s and
# the CA roots, with no shell or package manager. The builder is Debian 12 too, so the
# glibc the binary was linked against is the one it runs with.
#
# `static`: FROM scratch, holding only the binary linked statically against glibc
# (scripts/build-static.sh: `-C target-feature=+crt-static`) and the CA roots. glibc's
# `files` and `dns` resolvers are part of libc.a, so names resolve from the /etc/hosts
# and /etc/resolv.conf the container runtime mounts; tests/static_root.rs runs this
# binary in an empty root to prove it. (musl was the other way, but its allocator is
# slow under the zero-on-free allocator and the build would need a musl toolchain.)

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# Keep in step with scripts/validate-manifests.sh, which runs this same command in CI.
RUN cargo build --release --locked --bin secret-zero

FROM rust:${RUST_VERSION}-slim-bookworm AS build-static
WORKDIR /src
COPY . .
# The same script CI runs before tests/static_root.rs; it fails if the result still
# needs a shared library.
RUN ./scripts/build-static.sh

FROM scratch AS static
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secret-zero" \
      org.opencontainers.image.description="Secret Zero for Kubernetes: a sidecar that decrypts a Vault Transit ciphertext with the pod's ServiceAccount identity and hands it to the app once, over a Unix socket in memory (static binary, scratch image)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="scratch"
# The system roots, for a Vault whose certificate a public CA signed (a private CA is
# given with --vault-cacert instead).
COPY --from=build-static /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build-static /src/target/x86_64-unknown-linux-gnu/release/secret-zero /usr/local/bin/secret-zero
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secret-zero"]
CMD ["--help"]

FROM gcr.io/distroless/cc-debian12:nonroot AS distroless
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secret-zero" \
      org.opencontainers.image.description="Secret Zero for Kubernetes: a sidecar that decrypts a Vault Transit ciphertext with the pod's ServiceAccount identity and hands it to the app once, over a Unix socket in memory" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /src/target/release/secret-zero /usr/local/bin/secret-zero
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secret-zero"]
CMD ["--help"]

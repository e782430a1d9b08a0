# syntax=docker/dockerfile:1
#
# The secret-zero image: one binary, no shell, uid 65532.
#
#   docker build -t ghcr.io/secret-zero/secret-zero:0.1.0 .
#
# Base: gcr.io/distroless/cc-debian12. The binary links glibc dynamically (the
# gnu target; rustls, so no OpenSSL), and the cc image carries exactly glibc, libgcc_s
# and the CA roots, with no shell or package manager. The builder is Debian 12 too, so
# the glibc the binary was linked against is the one it runs with. (A static musl
# build on distroless/static would drop glibc, but musl's allocator is slow under the
# zero-on-free allocator and the build needs a musl toolchain; not worth it here.)

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# Keep in step with scripts/validate-manifests.sh, which runs this same command in CI.
RUN cargo build --release --locked --bin secret-zero

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="secret-zero" \
      org.opencontainers.image.description="Secret Zero for Kubernetes: a sidecar that decrypts a Vault Transit ciphertext with the pod's ServiceAccount identity and hands it to the app once, over a Unix socket in memory" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /src/target/release/secret-zero /usr/local/bin/secret-zero
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/secret-zero"]
CMD ["--help"]

# syntax=docker/dockerfile:1.7
#
# One image recipe for the four Taskwatch services; the build argument SERVICE picks the binary:
#
#   docker build --build-arg SERVICE=reminder --build-arg PORT=8081 -t taskwatch/reminder .
#
# SERVICE   backend | reminder | recurring-task | notification | audit-log   (the Cargo package = the binary name)
# PORT      the port the service listens on and the health check probes; each service's README default
#           (backend 8080, reminder 8081, recurring-task 8082, notification 8083). docker-compose.yml passes it.
#
# Dependency caching: BuildKit cache mounts keep the cargo registry, git checkouts and target/ between builds,
# so a source change recompiles only the workspace crates (librdkafka's C build included, it sits in target/).
# Chosen over cargo-chef because it needs no extra tool in the builder and caches the workspace's own crates
# too. The binary is copied out of the cache mount inside the same RUN: a cache mount is not part of the layer.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
# Only the builder gets the C toolchain pieces rdkafka's `cmake-build` needs (librdkafka is compiled from
# source: Debian's 2.0.2 is too old for rdkafka 0.39). The runtime image needs none of them except libz.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG SERVICE
ARG CARGO_PROFILE=release
RUN --mount=type=cache,id=taskwatch-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=taskwatch-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=taskwatch-target,target=/src/target \
    set -eu; \
    test -n "${SERVICE}" || { echo "build argument SERVICE is required (backend, reminder, recurring-task, notification)" >&2; exit 1; }; \
    cargo build --locked --profile "${CARGO_PROFILE}" -p "${SERVICE}" --bin "${SERVICE}"; \
    mkdir -p /out/app "/out/usr/lib/$(gcc -print-multiarch)"; \
    cp "target/${CARGO_PROFILE}/${SERVICE}" /out/app/service; \
    # The one shared library the binary needs that distroless/cc lacks (librdkafka's compression, `libz`
    # feature); placed in the same multiarch directory as in Debian, where the dynamic loader looks.
    cp -L "/lib/$(gcc -print-multiarch)/libz.so.1" "/out/usr/lib/$(gcc -print-multiarch)/libz.so.1"

# Runtime: distroless cc (glibc, libgcc, CA certificates; no shell, no package manager) as uid 65532.
# Chosen over debian:bookworm-slim + zlib1g because the attack surface is a libc and one binary; the price is
# copying libz from the builder, which is the same Debian 12 release, so the ABI matches.
FROM ${RUNTIME_IMAGE}
ARG SERVICE
ARG PORT=8080
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="taskwatch-${SERVICE}" \
      org.opencontainers.image.description="Taskwatch ${SERVICE} service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/taskwatch/taskwatch" \
      org.opencontainers.image.url="https://github.com/taskwatch/taskwatch/blob/main/services/${SERVICE}/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/ /
# The services log JSON lines on stdout and read everything else from the environment (see their READMEs);
# PORT is baked in so that the health check below probes the port the service listens on.
ENV PORT=${PORT} \
    RUST_LOG=info
EXPOSE ${PORT}
# Numeric, so Kubernetes can verify runAsNonRoot: distroless's `nonroot` user and group.
USER 65532:65532
# Exec form, no shell (distroless has none): the binary probes GET 127.0.0.1:$PORT/health/ready itself.
# start-period covers migrations and waiting for the broker (DATABASE_STARTUP_TIMEOUT / STARTUP_TIMEOUT).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/app/service", "healthcheck"]
ENTRYPOINT ["/app/service"]

# syntax=docker/dockerfile:1
#
# One image, two static binaries:
#   /usr/local/bin/tau-relay     (the ENTRYPOINT: the operator's relay pods run it with no command)
#   /usr/local/bin/tau-operator  (the chart's operator Deployment sets `command:`)
#
# Build (BuildKit, the default since Docker 23):
#   docker build -t ghcr.io/tau-dev/tau:0.1.0 .
# Or package binaries already built on the host instead of compiling again, so
# the image holds exactly the binaries you tested (the Tiltfile does this):
#   cargo build --release --locked --target x86_64-unknown-linux-musl -p tau-relay -p tau-operator
#   docker build --build-arg BINARIES=prebuilt -t ghcr.io/tau-dev/tau:dev .
# Run the relay alone (on Kubernetes the operator gives it writable volumes;
# here /tmp is the image's only writable directory):
#   docker run --rm -p 8000:8000 -e TAU_DATABASE_URL=sqlite:///tmp/tau.db \
#     -e TAU_SECRET_KEY_FILE=/tmp/tau-secret.key ghcr.io/tau-dev/tau:0.1.0
#
# Why static musl + distroless/static (not glibc + distroless/cc): the
# workspace has no OpenSSL (rustls everywhere) and its only C code (ring,
# bundled SQLite, mimalloc) builds with musl, so the binaries link statically
# and the final image holds nothing but them, CA certificates, /etc/passwd and
# tzdata: no libc, no shell, no package manager. The same binaries run on any
# Linux host, which is what lets Tilt build them on the developer's machine
# and copy them in. musl's allocator is slower than glibc's under heavy
# multi-threaded allocation, so the relay's Rust code allocates with mimalloc
# instead (the bundled SQLite and ring still call the C library's malloc); the
# operator allocates little and keeps musl's.

# Where the binaries come from: `build` (compile here) or `prebuilt` (copy
# target/$MUSL_TARGET/release/ from the build context; aarch64-unknown-linux-musl
# for arm64 nodes).
ARG BINARIES=build
ARG MUSL_TARGET=x86_64-unknown-linux-musl

# ---------------------------------------------------------------- build --
# Alpine's Rust is musl-native: a plain `cargo build` links statically.
FROM docker.io/library/rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# The whole workspace (every member's manifest is needed to resolve it);
# .dockerignore keeps out what the build does not read.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tau-relay -p tau-operator \
 && mkdir /out \
 && cp target/release/tau-relay target/release/tau-operator /out/

# ------------------------------------------------------------- prebuilt --
FROM scratch AS prebuilt
ARG MUSL_TARGET
COPY target/${MUSL_TARGET}/release/tau-relay \
     target/${MUSL_TARGET}/release/tau-operator /out/

FROM ${BINARIES} AS binaries

# ---------------------------------------------------------------- final --
# distroless/static: CA certificates, /etc/passwd (nobody = 65534), no shell.
FROM gcr.io/distroless/static-debian12
COPY --from=binaries /out/tau-relay /out/tau-operator /usr/local/bin/
# 65534 (nobody), numeric so Kubernetes' runAsNonRoot can verify it; the
# chart and the operator's relay pods also set runAsUser 65534.
USER 65534:65534
# The relay's default listen address is loopback; in a container bind all.
ENV TAU_LISTEN=0.0.0.0:8000
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/tau-relay"]

# wemeet-gateway: a release build on Debian bookworm, run as a numeric non-root user.
#
#   docker build -t wemeet-gateway .
#   docker run --rm -p 127.0.0.1:8080:8080 -e WEMEET_APP_ID=... -e WEMEET_SECRET_ID_FILE=... wemeet-gateway
#
# Builds offline when the context holds vendored crates: `cargo vendor vendor > .cargo/config.toml`
# beside this file, then `docker build --network=none .` (neither is committed).

ARG RUST_VERSION=1.95

# The source, and from it a skeleton of the dependencies alone: the manifest, the lock file,
# vendored crates when present, and empty targets. The builder copies the skeleton first, so its
# dependency layer is rebuilt only when the skeleton changes, not on every source change.
FROM rust:${RUST_VERSION}-slim-bookworm AS source
WORKDIR /build
COPY . .
RUN mkdir -p /skeleton/src /skeleton/bench \
    && cp Cargo.toml Cargo.lock /skeleton/ \
    && if [ -d vendor ]; then cp -r vendor /skeleton/; fi \
    && if [ -d .cargo ]; then cp -r .cargo /skeleton/; fi \
    && echo 'fn main() {}' > /skeleton/src/main.rs \
    && touch /skeleton/src/lib.rs \
    && for bench in bench/*.rs; do echo 'fn main() {}' > "/skeleton/$bench"; done

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build
# No symbol table in the image's binary (local release builds keep theirs, for profiling).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
COPY --from=source /skeleton/ ./
RUN cargo build --release --locked --bin wemeet-gateway
COPY --from=source /build/src ./src
# The real sources must be newer than the skeleton's stub build: touch them. The last check
# fails on a stub binary (it prints no OpenAPI document).
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin wemeet-gateway \
    && ./target/release/wemeet-gateway openapi | grep '"openapi": "3.1.0"' >/dev/null

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="wemeet-gateway" \
      org.opencontainers.image.description="Reads Tencent Meeting participant lists for internal frontends: signs, pages, paces and caches the upstream calls." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# TLS roots for https://api.meeting.qq.com, from the builder (which has Debian's ca-certificates).
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /build/target/release/wemeet-gateway /usr/local/bin/wemeet-gateway
USER 10001:10001
# glibc's allocator returns blocks of 32 KiB and more to the system when freed, and keeps two
# arenas: after a burst of cold lists, about a fifth less resident memory at the peak and more
# once quiet, at the same CPU per list (bench/README.md, "Memory under a burst").
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_LOG_FORMAT=json \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768:glibc.malloc.arena_max=2
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 \
    CMD ["wemeet-gateway", "healthcheck"]
ENTRYPOINT ["wemeet-gateway"]
CMD ["serve"]

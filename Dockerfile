# syntax=docker/dockerfile:1
# Every binary of the workspace (the five services and `flashsale`) in one image, built once.
# docker-compose.yml runs each service from it with its own `command`.
#
# Dependency caching: cargo-chef turns the manifests into a recipe; the dependencies are
# compiled from the recipe alone, so a change to the project's own code reuses that layer.

FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The build settings (jemalloc's options) before the dependencies are compiled with them.
COPY .cargo .cargo
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir -p /out \
 && for bin in gateway inventory reservation order payment flashsale; do \
      cp "target/release/$bin" /out/; \
    done

FROM debian:bookworm-slim AS runtime
# curl: the compose healthchecks (GET /readyz); ca-certificates: TLS to anything outside.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home flashsale
COPY --from=builder /out/ /usr/local/bin/
# The pinned k6 (a static binary), for `flashsale study`: the compose `study` service runs
# the comparison's protocol from this image against the suite's nginx.
COPY --from=grafana/k6:1.1.0 /usr/bin/k6 /usr/local/bin/k6
USER flashsale
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
# Each service handles SIGTERM itself: stop accepting, drain, exit (SHUTDOWN_GRACE_SECS).
STOPSIGNAL SIGTERM
CMD ["gateway"]

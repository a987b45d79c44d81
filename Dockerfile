# A goway server in a container: the examples built in a Rust image, run from a small Debian
# one. See docs/deploy.md (what was run and what was only written).
#
#   docker build -t goway-examples .
#   docker run --rm -p 8080:8080 goway-examples            # http_todo on :8080
#   docker run --rm -p 6380:6380 goway-examples kv --addr 0.0.0.0:6380

# --- build ---------------------------------------------------------------------------------
FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --examples \
    && mkdir /out \
    && cp target/release/examples/http_todo target/release/examples/http_hello \
          target/release/examples/echo target/release/examples/kv \
          target/release/examples/chat target/release/examples/proxy \
          target/release/examples/pubsub_kv /out/

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
COPY --from=build /out/ /usr/local/bin/
# No root needed: the ports are above 1024.
USER 65532:65532
ENV RUST_LOG=info,may=warn
EXPOSE 8080
# The examples drain on SIGTERM within --grace (keep it below the orchestrator's kill
# deadline: Kubernetes' terminationGracePeriodSeconds, `docker stop -t`, default 10 s).
ENTRYPOINT []
CMD ["http_todo", "--addr", "0.0.0.0:8080", "--grace", "20"]

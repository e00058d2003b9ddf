# Dadly: one binary, embedded defaults unless configured by environment.
# Build: docker build -t dadly .
# Run:   docker run -p 8080:8080 -v dadly-data:/data dadly
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Migrations and prompts are compiled into the binary.
RUN cargo build --release --locked --bin dadly && cp target/release/dadly /usr/local/bin/dadly

FROM debian:bookworm-slim
# reqwest (rustls) and tonic read the system certificate store.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data dadly && mkdir -p /data && chown dadly /data
COPY --from=build /usr/local/bin/dadly /usr/local/bin/dadly
USER dadly
# PORT (not DADLY_BIND) so platforms that set PORT, like Cloud Run, are obeyed.
ENV DADLY_DATA_DIR=/data \
    PORT=8080 \
    DADLY_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080}"]
ENTRYPOINT ["dadly"]
CMD ["serve"]

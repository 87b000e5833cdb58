# syntax=docker/dockerfile:1
#
# docker build -t containers-gateway .
# docker run -p 8080:8080 \
#   -v "$PWD/my-gateway.json:/opt/gateway/etc/gateway/gateway.json:ro" \
#   -v "$PWD/policies:/opt/gateway/etc/gateway/policies:ro" containers-gateway
#
# The image runs `gateway --config /opt/gateway/etc/gateway/gateway.json`
# as an unprivileged user; the config and the policies it names are meant
# to be mounted over the defaults `make install` put there. Its
# HEALTHCHECK asks the admin listener's /healthz on 127.0.0.1:9090, so a
# mounted config keeps "admin_listen" on port 9090.

# Build stage: Debian bookworm with the build dependencies; installs into
# /opt/gateway with the same `make install` as a host.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libevent-dev libjansson-dev libcurl4-openssl-dev libssl-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean \
 && make -j"$(nproc)" all \
 && make install PREFIX=/opt/gateway \
 && /opt/gateway/bin/gateway --config /opt/gateway/etc/gateway/gateway.json --check

# Runtime stage: the binary, its shared libraries, CA certificates and curl
# for the health check; nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
      libevent-2.1-7 libevent-openssl-2.1-7 libjansson4 libcurl4 libssl3 libhiredis0.14 \
      libsqlite3-0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/gateway
COPY --from=build /opt/gateway /opt/gateway
# store.path: ownership and live containers kept across restarts.
VOLUME ["/opt/gateway/etc/gateway", "/var/lib/gateway"]
USER 10001:10001
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
# SIGTERM drains: requests in flight finish within shutdown_grace_ms; give
# `docker stop -t` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/gateway/bin/gateway"]
CMD ["--config", "/opt/gateway/etc/gateway/gateway.json"]

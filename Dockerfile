# Build stage: Debian bookworm with the build dependencies.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libevent-dev libjansson-dev libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make && make install PREFIX=/opt/gateway

# Runtime stage: the binary, its shared libraries and nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      libevent-2.1-7 libevent-openssl-2.1-7 libjansson4 libcurl4 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin gateway
COPY --from=build /opt/gateway /opt/gateway
# Config and policies are meant to be mounted over these defaults.
VOLUME ["/opt/gateway/etc/gateway"]
USER gateway
EXPOSE 8080
ENTRYPOINT ["/opt/gateway/bin/gateway"]
CMD ["--config", "/opt/gateway/etc/gateway/gateway.json"]

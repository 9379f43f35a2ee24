# dogpiled image: build on Debian bookworm, run on bookworm-slim as a
# non-root user. Plain Dockerfile syntax: `docker build .` and
# `podman build --format docker .` both work (see deploy/tests/).
#
#   docker build -t dogpiled .
#   docker run -p 7420:7420 -p 9420:9420 dogpiled
#
# Settings come from /etc/dogpiled/dogpiled.toml (deploy/dogpiled.toml);
# DOGPILED_* variables and flags after the image name override it.

FROM debian:bookworm AS build
# The project's one install list; its own layer so source edits keep it.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
# .dockerignore keeps out tests, docs and benchmark sources, so edits
# there reuse the compiled layer.
COPY . /src
# JOBS: parallel compile jobs (default: all cores).
ARG JOBS=
ENV CCACHE_DISABLE=1
# The host build's flags without -g (same warnings under -Werror; no debug
# info to compile and strip), and the build tree dropped in the same layer.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
      -DBUILD_TESTING=OFF -DBUILD_BENCHMARKS=OFF \
 && cmake --build /build -j"${JOBS:-$(nproc)}" --target dogpiled dogpilectl \
 && mkdir -p /out/bin /out/lib \
 && cp /build/server/dogpiled /build/client/dogpilectl /out/bin/ \
 && cp -P /build/client/libdogpiled_client.so* /out/lib/ \
 && strip --strip-unneeded /out/bin/* /out/lib/libdogpiled_client.so.*.* \
 && rm -rf /build

FROM debian:bookworm-slim
# Runtime shared libraries only (their dependencies follow), libraft from
# bookworm-backports among them: the same install list, its "runtime" group.
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh runtime \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 dogpiled \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/dogpiled --shell /usr/sbin/nologin dogpiled \
 && install -d -o 10001 -g 10001 /var/lib/dogpiled /run/dogpiled
COPY --from=build /out/ /usr/local/
COPY deploy/dogpiled.toml /etc/dogpiled/dogpiled.toml
# Fails the build if a shared library is missing.
RUN ldconfig && dogpiled --help >/dev/null && dogpilectl --help >/dev/null

# The file sets 0.0.0.0 for gRPC and metrics. The port file tells the health
# check which port the daemon really bound, even after --listen overrides.
ENV DOGPILED_CONFIG=/etc/dogpiled/dogpiled.toml \
    DOGPILED_PORT_FILE=/run/dogpiled/grpc.port
# gRPC, Prometheus metrics
EXPOSE 7420 9420
# The fencing-token high-water mark: keep it across container restarts.
VOLUME ["/var/lib/dogpiled"]
USER 10001:10001
# Needs a listen address that includes loopback (0.0.0.0 or 127.0.0.1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/bin/sh", "-c", "exec dogpilectl --timeout 3000 --target \"127.0.0.1:$(cat /run/dogpiled/grpc.port 2>/dev/null || echo 7420)\" health"]
ENTRYPOINT ["dogpiled"]

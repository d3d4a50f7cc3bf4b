# SystemManager in a container that sees the host: see compose.yaml for how to run it, and
# docs/deploy.md for why each setting is there.
#
#   docker build -t systemmanager .                   # compiles in a Rust image (needs a registry)
#   docker build --target prebuilt -t systemmanager .   # from a static binary at ./systemmanager
#
# The final image is `FROM scratch`: one static binary (glibc linked statically; 27 MiB in a
# release build), no shell, no package manager, run as an unprivileged user.

# --- the image's settings, shared by both ways of getting the binary ----------------------------
FROM scratch AS runtime
LABEL org.opencontainers.image.title="SystemManager" \
      org.opencontainers.image.description="MCP server that lets AI assistants monitor and safely manage a Linux host" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.modelcontextprotocol.server.name="io.github.systemmanager/systemmanager"
# The host's /proc, /sys and / are mounted at /host (compose.yaml); the server reads them there.
ENV SYSTEMMANAGER_CONFIG=/etc/systemmanager/config.toml \
    STATE_DIRECTORY=/var/lib/systemmanager
COPY packaging/container/config.toml /etc/systemmanager/config.toml
COPY --chown=65532:65532 packaging/container/state/ /var/lib/systemmanager/
# Not root: reading the host needs no privilege beyond what compose.yaml grants.
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/systemmanager", "healthcheck", "--http", "127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/systemmanager"]
CMD ["serve", "--http", "127.0.0.1:8080"]

# --- a static binary built beforehand, at ./systemmanager in the build context -----------------
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu
#   cp target/x86_64-unknown-linux-gnu/release/systemmanager . && docker build --target prebuilt .
FROM runtime AS prebuilt
COPY systemmanager /usr/local/bin/systemmanager

# --- or compiled here ---------------------------------------------------------------------------
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN target="$(rustc -vV | sed -n 's/^host: //p')" && \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --bin systemmanager --target "$target" && \
    cp "target/$target/release/systemmanager" /systemmanager

FROM runtime
COPY --from=build /systemmanager /usr/local/bin/systemmanager

#!/bin/sh
# Make, without Docker Hub, the two base images packaging/Dockerfile starts from, under the
# names it uses (docs/operator.md, "Packaging"):
#   debian:bookworm-slim  a Debian 12 minbase root filesystem made by debootstrap from
#                         Debian's own mirror, imported with `docker import`;
#   rust:1.95-bookworm    that image with gcc and libc6-dev (from Debian) and the Rust
#                         toolchain of this machine (the one rust-toolchain.toml pins),
#                         trusting also this machine's local CAs
#                         (/usr/local/share/ca-certificates: a TLS-intercepting egress
#                         proxy's, without which cargo cannot reach crates.io from inside).
# Needs root, debootstrap, a running Docker daemon and a Debian 12 x86_64 host (the
# toolchain is copied from it). Usage: packaging/local-base-images.sh [WORK_DIR]
set -eu
work=${1:-$(mktemp -d)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror"
    tar -C "$work/rootfs" -c . | docker import - debian:bookworm-slim
fi

sysroot=$(cd "$(dirname "$0")/.." && rustc --print sysroot)
mkdir -p "$work/rust" "$work/ca"
cp -a "$sysroot/bin" "$sysroot/lib" "$work/rust/"
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] && cp "$crt" "$work/ca/"
done
cat > "$work/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca /usr/local/share/ca-certificates
RUN update-ca-certificates
COPY rust /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
DOCKERFILE
docker build -t rust:1.95-bookworm "$work"
echo "made debian:bookworm-slim and rust:1.95-bookworm in $work"

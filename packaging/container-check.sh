#!/bin/sh
# Build packaging/Dockerfile and try the image (docs/operator.md, "Packaging"): the
# version, `check` of a configuration made by `mimi-hub init`, the server running as
# uid 10001 with its state in a volume, a `mimi` client registering and creating a room
# through the published client port, an admin command and a backup inside the container,
# and a clean stop on SIGTERM (exit status 0). Needs docker, and mimi-hub and mimi on
# PATH (cargo build --release -p mimi-hub -p mimi-client). Base images without Docker
# Hub: packaging/local-base-images.sh. Usage: packaging/container-check.sh [WORK_DIR]
# Ports: MIMI_CHECK_PORT (default 28443) and the next one, on 127.0.0.1.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
port=${MIMI_CHECK_PORT:-28443}
name=mimi-check-$$
volume=mimi-check-state-$$

docker build -f "$repo/packaging/Dockerfile" -t mimi-hub "$repo"
docker run --rm mimi-hub --version

# A configuration as the guide writes it for the container: listeners on all addresses
# inside it, state under /var/lib/mimi, files readable by the image's user.
mimi-hub init --dir "$work/conf" --server-name a.example --ca-dir "$work/ca" \
    --open-registration --listen 0.0.0.0:8443 --api-listen 0.0.0.0:8444 \
    --admin-listen 127.0.0.1:8445 >/dev/null
cp "$work/ca/ca.crt" "$work/conf/ca.crt"
sed -i -e 's|^ca = .*|ca = "ca.crt"|' \
    -e 's|^storage = .*|storage = "/var/lib/mimi/a.example.redb"|' "$work/conf/provider.toml"
chown -R 10001:10001 "$work/conf"

cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume rm "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

docker run --rm -v "$work/conf:/etc/mimi:ro" -v "$volume:/var/lib/mimi" mimi-hub \
    check --config /etc/mimi/provider.toml
docker run -d --name "$name" -v "$work/conf:/etc/mimi:ro" -v "$volume:/var/lib/mimi" \
    -p "127.0.0.1:$port:8443" -p "127.0.0.1:$((port + 1)):8444" mimi-hub >/dev/null
# The server prints its listening line once bound (a bounded wait for a real process).
tries=0
until docker logs "$name" 2>/dev/null | grep -q "listening"; do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || { docker logs "$name"; echo "the server did not start" >&2; exit 1; }
    sleep 0.1
done
[ "$(docker exec "$name" id -u)" = 10001 ]
mimi --dir "$work/alice" register --api "https://a.example:$((port + 1))" \
    --connect "127.0.0.1:$((port + 1))" --ca "$work/ca/ca.crt" --user alice --device laptop
mimi --dir "$work/alice" create-room
docker exec "$name" mimi-hub admin --config /etc/mimi/provider.toml list-rooms | grep -q '"role": "hub"'
docker exec "$name" mimi-hub backup --config /etc/mimi/provider.toml --out /var/lib/mimi/backup.redb
docker stop "$name" >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' "$name")" = 0 ]
docker logs "$name" 2>&1 | grep -q "stopping"
echo "container check: ok"

#!/usr/bin/env bash
# Manage the AIConexus Gateway container (docker-compose.gateway.yml, service "gateway"), and
# make the key the compose `cluster` profile needs (deploy/keys/gateway.key).
# Run `./gateway-docker.sh help` for the commands; docs/deployment.md for the whole guide.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COMPOSE_FILE_PATH="$SCRIPT_DIR/docker-compose.gateway.yml"
SERVICE=gateway
CONTAINER=aiconexus-gateway
IMAGE=aiconexus-gateway:latest
CONTAINER_PORT=8000
# The first Docker health check runs 30 s after start (the image's interval), so allow several.
START_TIMEOUT=${GATEWAY_START_TIMEOUT:-90}
POLL_INTERVAL=${GATEWAY_POLL_INTERVAL:-2}
LOG_LINES_ON_FAILURE=40
# The cluster's key (the compose file's `gateway-key` secret): every gateway-cluster replica
# loads it, so the whole cluster has one gateway DID. Made once, by `key`, never overwritten.
KEY_DIR="$SCRIPT_DIR/deploy/keys"
KEY_NAME=gateway.key
KEY_FILE="$KEY_DIR/$KEY_NAME"
# The image's user (Dockerfile.gateway's USER): the cluster gateways read the key as this uid.
IMAGE_UID=1000

# Runs inside the container: pretty /health JSON, exit 0 only when healthy (https when the
# gateway serves TLS itself; unverified, it is localhost).
HEALTH_PY='import json, os, ssl, sys, urllib.error, urllib.request
tls = ssl.create_default_context()
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE
scheme = "https" if os.environ.get("TLS_CERT") else "http"
url = scheme + "://127.0.0.1:" + os.environ.get("GATEWAY_PORT", "8000") + "/health"
try:
    response = urllib.request.urlopen(url, timeout=5, context=tls)
except urllib.error.HTTPError as error:
    response = error
except OSError as error:
    sys.exit("no answer from " + url + ": " + str(error))
body = json.load(response)
print(json.dumps(body, indent=2))
sys.exit(0 if body.get("status") == "healthy" else 1)'

COMPOSE=()

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [OPTIONS]

Manage the AIConexus Gateway container ($CONTAINER) with Docker Compose.

Commands:
  build [OPTS]    build the image $IMAGE (OPTS go to 'compose build', e.g. --no-cache)
  start           start the gateway and wait until Docker reports it healthy
  stop            stop the gateway (the container and its logs are kept)
  restart         stop, then start (applies changed environment such as LOG_LEVEL)
  status          container state and health; exit 0 only when running
  logs [-f]       last 100 log lines; -f follows (other options go to 'compose logs')
  shell           open a shell inside the running container
  health          print the gateway's /health JSON; exit 0 only when healthy
  cleanup [-y]    remove the container, its network, the log volume and the image
                  (asks first; -y or --yes skips the question; the cluster key is kept)
  key             create deploy/keys/gateway.key, the key every gateway of the compose
                  'cluster' profile shares (one gateway DID), unless it exists; print its DID
  help            this text (also -h, --help)

Environment:
  LOG_LEVEL, LOG_FORMAT   passed to the gateway (e.g. LOG_LEVEL=DEBUG $(basename "$0") start)
  GATEWAY_BIND            host address of port 8000 (127.0.0.1; 0.0.0.0 opens it to the network)
  GATEWAY_START_TIMEOUT   seconds 'start' waits for a healthy gateway (default 90)
EOF
}

die() {
    echo "error: $*" >&2
    exit 1
}

usage_error() {
    echo "error: $*" >&2
    usage >&2
    exit 2
}

# Finds docker and Compose v2 (the plugin, else the standalone binary) and checks the daemon.
require_docker() {
    command -v docker >/dev/null 2>&1 \
        || die "docker is not installed (https://docs.docker.com/engine/install/)"
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        case "$(docker-compose version --short 2>/dev/null || true)" in
            1.*) die "docker-compose v1 is too old for docker-compose.gateway.yml: install Compose v2" ;;
            *) ;;
        esac
        COMPOSE=(docker-compose)
    else
        die "Docker Compose is not installed: install the compose plugin ('docker compose') or docker-compose"
    fi
    docker info >/dev/null 2>&1 \
        || die "the Docker daemon is not reachable: is it running, and may this user use it? (try 'docker info')"
}

compose() {
    "${COMPOSE[@]}" -f "$COMPOSE_FILE_PATH" "$@"
}

# "running", "exited", ... or "missing" when there is no such container.
container_state() {
    docker container inspect --format '{{.State.Status}}' "$CONTAINER" 2>/dev/null || echo missing
}

# "healthy", "unhealthy", "starting", or "none" when the container has no health check.
container_health() {
    docker container inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \
        "$CONTAINER" 2>/dev/null || echo missing
}

print_urls() {
    local mapping host port
    mapping=$(docker port "$CONTAINER" "$CONTAINER_PORT/tcp" 2>/dev/null | head -n 1 || true)
    host=${mapping%:*}
    port=${mapping##*:}
    if [ -z "$mapping" ] || [ -z "$port" ]; then
        host=${GATEWAY_BIND:-127.0.0.1}
        port=$CONTAINER_PORT
    fi
    case "$host" in
        0.0.0.0 | "[::]" | "::")
            echo "Listening on all interfaces (GATEWAY_BIND=0.0.0.0): reachable from other machines"
            host=127.0.0.1
            ;;
    esac
    echo "  WebSocket: ws://$host:$port/ws"
    echo "  HTTP:      http://$host:$port  (/health, /agents, /metrics)"
}

show_failure_logs() {
    echo "Last $LOG_LINES_ON_FAILURE log lines:" >&2
    compose logs --no-color --tail "$LOG_LINES_ON_FAILURE" "$SERVICE" >&2 || true
}

cmd_build() {
    compose build "$@" "$SERVICE"
}

cmd_start() {
    if [ "$(container_state)" = running ]; then
        echo "$CONTAINER is already running ($(container_health)); use 'restart' to apply changes."
        print_urls
        return 0
    fi
    echo "Starting $CONTAINER..."
    compose up -d "$SERVICE"

    local started=$SECONDS waited state health
    while :; do
        waited=$((SECONDS - started))
        state=$(container_state)
        health=$(container_health)
        case "$state/$health" in
            running/healthy)
                echo "$CONTAINER is healthy."
                print_urls
                return 0
                ;;
            running/none)
                echo "$CONTAINER is running (the image has no health check)."
                print_urls
                return 0
                ;;
            running/unhealthy)
                echo "error: $CONTAINER is unhealthy." >&2
                show_failure_logs
                return 1
                ;;
            running/*) ;;
            *)
                echo "error: $CONTAINER stopped while starting (state: $state)." >&2
                show_failure_logs
                return 1
                ;;
        esac
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            echo "error: $CONTAINER not healthy after ${START_TIMEOUT}s (health: $health)." >&2
            show_failure_logs
            return 1
        fi
        echo "  waiting for $CONTAINER to be healthy (${health}, ${waited}s/${START_TIMEOUT}s)"
        sleep "$POLL_INTERVAL"
    done
}

cmd_stop() {
    if [ "$(container_state)" = missing ]; then
        echo "$CONTAINER is not created; nothing to stop."
        return 0
    fi
    compose stop "$SERVICE"
    echo "$CONTAINER stopped."
}

cmd_status() {
    local state health
    state=$(container_state)
    if [ "$state" = missing ]; then
        echo "$CONTAINER: not created (run '$(basename "$0") start')"
        return 1
    fi
    health=$(container_health)
    echo "$CONTAINER: $state (health: $health)"
    compose ps "$SERVICE"
    [ "$state" = running ]
}

cmd_logs() {
    compose logs --tail 100 "$@" "$SERVICE"
}

cmd_shell() {
    [ "$(container_state)" = running ] || die "$CONTAINER is not running (start it first)"
    compose exec "$SERVICE" sh
}

cmd_health() {
    [ "$(container_state)" = running ] || die "$CONTAINER is not running (start it first)"
    docker exec "$CONTAINER" python -c "$HEALTH_PY"
}

# The DID recorded in the key file ({"type": ..., "did": "did:key:...", "seed": ...}); empty
# when the file cannot be read.
key_file_did() {
    local content=""
    { content=$(<"$KEY_FILE"); } 2>/dev/null || true
    if [[ $content =~ \"did\":\ *\"(did:key:[1-9A-HJ-NP-Za-km-z]+)\" ]]; then
        echo "${BASH_REMATCH[1]}"
    fi
}

# Made by the image's own keygen (no Python needed on the host), as the calling user so the file
# is theirs; as root, handed to the image's user. The keygen refuses to replace a file, even one
# that appears meanwhile: the first key made is the cluster's.
cmd_key() {
    local did output
    if [ -e "$KEY_FILE" ] || [ -L "$KEY_FILE" ]; then
        did=$(key_file_did)
        echo "$KEY_FILE exists: kept (every cluster gateway must keep using the same key)."
        if [ -n "$did" ]; then
            echo "Gateway DID: $did"
        else
            echo "(its DID cannot be read by this user)"
        fi
        return 0
    fi
    if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        echo "Building $IMAGE first: the key is made with it."
        compose build "$SERVICE"
    fi
    [ -d "$KEY_DIR" ] || mkdir -p "$KEY_DIR"
    if ! output=$(docker run --rm --network none --read-only \
        --security-opt no-new-privileges:true --user "$(id -u):$(id -g)" \
        -v "$KEY_DIR:/keys" "$IMAGE" python -m aiconexus_gateway.keygen "/keys/$KEY_NAME" 2>&1); then
        echo "$output" >&2
        case "$output" in
            *"No module named aiconexus_gateway.keygen"*)
                die "$IMAGE has no keygen yet: rebuild it ('$(basename "$0") build'), then run 'key' again"
                ;;
        esac
        die "could not create $KEY_FILE"
    fi
    did=${output##*$'\n'}
    if [ "$(id -u)" = 0 ]; then
        chown "$IMAGE_UID:$IMAGE_UID" "$KEY_FILE"
    fi
    echo "Created $KEY_FILE (mode 0600): the cluster's key, read by every gateway-cluster replica."
    echo "Gateway DID: $did"
    echo "Git ignores it: keep a copy somewhere safe (a new key means a new gateway DID)."
    case "$(id -u)" in
        0 | "$IMAGE_UID") ;;
        *)
            echo "The gateways run as uid $IMAGE_UID: on Linux, let them read it with"
            echo "  sudo chown $IMAGE_UID:$IMAGE_UID $KEY_FILE"
            ;;
    esac
}

cmd_cleanup() {
    local assume_yes=false answer
    case "${1:-}" in
        -y | --yes) assume_yes=true ;;
        "") ;;
        *) usage_error "cleanup takes only -y or --yes, not '$1'" ;;
    esac
    if [ "$assume_yes" != true ]; then
        printf 'Remove the %s container, its network, the log volume and the image %s? [y/N] ' \
            "$CONTAINER" "$IMAGE"
        answer=""
        read -r answer || true
        case "$answer" in
            y | Y | yes | YES) ;;
            *)
                echo "Cancelled."
                return 1
                ;;
        esac
    fi
    compose --profile cluster down --volumes --remove-orphans
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        docker image rm "$IMAGE"
    fi
    echo "Cleaned up."
}

main() {
    local command=${1:-}
    if [ $# -gt 0 ]; then
        shift
    fi
    case "$command" in
        help | -h | --help)
            usage
            return 0
            ;;
        build | start | stop | restart | status | logs | shell | health | cleanup | key) ;;
        "")
            usage >&2
            return 2
            ;;
        *) usage_error "unknown command '$command'" ;;
    esac
    if [ "$command" = key ] && [ $# -gt 0 ]; then
        usage_error "key takes no options (it never replaces a key; see docs/deployment.md)"
    fi
    require_docker
    case "$command" in
        build) cmd_build "$@" ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart)
            cmd_stop
            cmd_start
            ;;
        status) cmd_status ;;
        logs) cmd_logs "$@" ;;
        shell) cmd_shell ;;
        health) cmd_health ;;
        cleanup) cmd_cleanup "$@" ;;
        key) cmd_key ;;
    esac
}

main "$@"

#!/usr/bin/env bash
# System tools the tests use for real: redis-server (cluster tests start their own on an ephemeral
# port), openssl (TLS tests make throw-away certificates) and nginx (`nginx -t` on the shipped config). Installed from Debian packages when missing.
# The JavaScript client's tests (clients/js, tests/js) need Node.js >= 20 with npm and Chromium (a real
# headless browser, Debian's, never a downloaded one), then clients/js's npm packages from its lock file.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)  # peer channels: TURN for real (tests/peer)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)  # `nginx -t` on deploy/nginx
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${missing[*]} missing and apt-get is not available; install them by hand" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]} from Debian packages (needed by the tests)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "error: the JavaScript client's tests need Node.js >= 20, found $(node --version); install a newer Node.js" >&2
  exit 1
fi
client="$(dirname "$0")/../clients/js"
if [ ! -f "$client/node_modules/.package-lock.json" ] \
    || [ "$client/package-lock.json" -nt "$client/node_modules/.package-lock.json" ]; then
  echo "installing clients/js's npm packages from its lock file (npm ci)" >&2
  (cd "$client" && npm ci --no-audit --no-fund --loglevel=error)
fi

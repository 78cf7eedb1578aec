#!/usr/bin/env bash
# The cluster tests start their own redis-server on an ephemeral port; install it when missing.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "redis-server not found; installing it from Debian packages" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  exit 0
fi
echo "error: redis-server is missing and apt-get is not available; install Redis >= 6 by hand" >&2
exit 1

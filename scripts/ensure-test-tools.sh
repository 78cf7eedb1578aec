#!/usr/bin/env bash
# System tools the tests use for real: redis-server (cluster tests start their own on an ephemeral
# port) and openssl (TLS tests make throw-away certificates). Installed from Debian packages when missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]} from Debian packages (needed by the tests)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "error: ${missing[*]} missing and apt-get is not available; install them by hand" >&2
exit 1

#!/usr/bin/env bash
# Installs what building and testing stree needs, when it is missing (Debian, as root).
set -euo pipefail
need=()
for pkg in cmake gcc make pkg-config curl libcjson-dev libxxhash-dev libcriterion-dev libpcre2-dev libutf8proc-dev \
  libmicrohttpd-dev clang; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

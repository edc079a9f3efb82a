#!/usr/bin/env bash
# Downloads (no install) the Debian packages the GPU machine lacks into .debs/, to carry there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .debs && cd .debs
apt-get download libcjson1 libcjson-dev libxxhash0 libxxhash-dev libcriterion3 libcriterion-dev libboxfort-dev \
  libgit2-1.5 libnanomsg5 libhttp-parser2.9 libmbedcrypto7 libmbedtls14 libmbedx509-1 libssh2-1 \
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2 \
  libmicrohttpd-dev libmicrohttpd12

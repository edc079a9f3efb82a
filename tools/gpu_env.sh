# Sourced by the GPU scripts: the GPU machine has no Debian packages and no network, so unpack the
# carried .debs (tools/fetch_debs.sh) into a private prefix when a library is missing.
if ! pkg-config --exists libcjson libxxhash criterion libpcre2-8 libutf8proc 2>/dev/null; then
  deps=/opt/stree-deps
  mkdir -p "$deps"
  for f in .debs/*.deb; do dpkg -x "$f" "$deps"; done
  # criterion.pc names its private dependencies' .pc files, which a shared link does not need
  sed -i '/^Requires.private/d' "$deps"/usr/lib/x86_64-linux-gnu/pkgconfig/criterion.pc
  export PKG_CONFIG_SYSROOT_DIR=$deps
  export PKG_CONFIG_PATH=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
  export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu
fi

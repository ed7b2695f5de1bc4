#!/usr/bin/env bash
# `make wheel-check`: the wheel on a bare Debian. It builds a minimal Debian 12 root file system
# with debootstrap (Python and its venv only: no RocksDB, no ODBC, no compiler), installs the
# wheel there with pip, and inside it (chroot) reads a store the wheel made on this machine:
# `import cheetah`, `cheetah status`, `cheetah get`, and ldd of the extension. Needs root and
# the network (the Debian mirror, and PyPI for the wheel's Python dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "wheel-check needs root (debootstrap, chroot); run it with sudo" >&2; exit 1; }

WHEEL=$(ls dist/cheetah-*.whl 2>/dev/null | head -1)
[ -n "$WHEEL" ] || { echo "no wheel in dist/: run \`make wheel\`" >&2; exit 1; }
WORK=$(pwd)/target/wheel-check
ROOT=$WORK/root
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
began=$(date +%s)
step() { printf '\n\033[1m== [%3d s] %s\033[0m\n' "$(( $(date +%s) - began ))" "$*"; }

command -v debootstrap >/dev/null || {
  step "Installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

unmount() {
  for m in "$ROOT/data" "$ROOT/dev" "$ROOT/proc"; do mountpoint -q "$m" && umount -l "$m"; done
  return 0
}
trap unmount EXIT
unmount
rm -rf "$ROOT" "$WORK/host"
mkdir -p "$WORK/debs" "$WORK/pypi"

step "Building a minimal Debian 12 in $ROOT (debootstrap --variant=minbase, plus python3-venv)"
debootstrap --variant=minbase --include=python3,python3-venv --cache-dir="$WORK/debs" \
  bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
for lib in librocksdb libodbc libsnappy libgflags liblz4 libzstd libstdc++; do
  found=$(find "$ROOT/usr/lib" "$ROOT/lib" -name "$lib.so*" 2>/dev/null | head -1)
  if [ -z "$found" ]; then
    printf '  %-12s absent\n' "$lib"
  elif [ "$lib" = librocksdb ] || [ "$lib" = libodbc ]; then
    echo "the base system has $lib ($found); it should not" >&2; exit 1
  else
    printf '  %-12s in the base system: %s\n' "$lib" "${found#"$ROOT"}"
  fi
done
for tool in cc gcc clang odbcinst; do
  [ ! -e "$ROOT/usr/bin/$tool" ] || { echo "the base system has $tool; it should not" >&2; exit 1; }
done
echo "  no compiler, no RocksDB, no unixODBC, no ODBC driver"

step "Downloading the wheel's Python dependencies on the host (the chroot installs offline)"
rm -f "$WORK"/pypi/cheetah-*.whl
.venv/bin/pip download -q -d "$WORK/pypi" --only-binary=:all: "$WHEEL"
ls "$WORK/pypi" | sed 's/^/  /'

step "On the host: the wheel in a fresh venv updates a small SQLite market"
python3 -m venv "$WORK/host/venv"
"$WORK/host/venv/bin/pip" install -q --no-index --find-links "$WORK/pypi" "$WORK/pypi/$(basename "$WHEEL")"
.venv/bin/python benches/market.py sqlite "$WORK/host/market.db" --symbols 60 --years 1 >/dev/null
mkdir -p "$WORK/host/data"
cat > "$WORK/host/data/cheetah.toml" <<TOML
[store]
path = "store"

[source]
odbc = "Driver={SQLite3};Database=$WORK/host/market.db;BigInt=1;NoCreat=1;"

[[table]]
name = "daily_bar"
date = "trade_date"
symbol = "symbol"
fields = ["close", "volume"]
start = "2015-01-01"

[[table]]
name = "fundamentals"
kind = "asof"
date = "ann_date"
symbol = "symbol"
order_by = "report_period"
fields = ["revenue"]
start = "2014-01-01"
TOML
"$WORK/host/venv/bin/cheetah" --config "$WORK/host/data/cheetah.toml" update --no-progress
CHECK='
import hashlib, sys
import pandas as pd
import cheetah
cache = cheetah.open(sys.argv[1])
df = cache.get_data("2015-01-01", "2015-12-31", cols=["close", "volume", "revenue"])
digest = hashlib.sha256(pd.util.hash_pandas_object(df).values.tobytes()).hexdigest()
print(f"cheetah {cheetah.__version__}: {len(df):,} rows x {df.shape[1]} fields, digest {digest[:16]}")
'
expected=$("$WORK/host/venv/bin/python" -c "$CHECK" "$WORK/host/data/cheetah.toml")
echo "  $expected"

step "In the chroot: pip install the wheel"
mkdir -p "$ROOT/data" "$ROOT/wheels"
cp "$WORK"/pypi/*.whl "$ROOT/wheels/"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
mount --bind "$WORK/host/data" "$ROOT/data"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root "$@"; }
in_root python3 -m venv /opt/venv
in_root pip install -q --no-index --find-links /wheels "/wheels/$(basename "$WHEEL")"
in_root pip list 2>/dev/null | sed 's/^/  /'

step "In the chroot: import cheetah and read the host's store"
actual=$(in_root python -c "$CHECK" /data/cheetah.toml)
echo "  $actual"
[ "$actual" = "$expected" ] || { echo "the chroot read differs from the host's: $expected" >&2; exit 1; }

step "In the chroot: cheetah status"
in_root cheetah --config /data/cheetah.toml status
step "In the chroot: cheetah get"
rows=$(in_root cheetah --config /data/cheetah.toml get --start 2015-06-01 --end 2015-06-03 --cols close,revenue)
head -8 <<<"$rows"
echo "  ... $(wc -l <<<"$rows") lines"

step "In the chroot: cheetah update without an ODBC driver says what to install"
if message=$(in_root cheetah --config /data/cheetah.toml update --no-progress 2>&1); then
  echo "update succeeded without a driver" >&2; exit 1
fi
echo "  $(tail -1 <<<"$message")"
grep -q 'apt-get install libsqliteodbc' <<<"$message" || { echo "the message names no package" >&2; exit 1; }

step "In the chroot: ldd of the extension"
ext=$(in_root python -c 'import cheetah._cheetah as m; print(m.__file__)')
in_root ldd "$ext" | sed 's/^/  /'
# auditwheel's RPATH is $ORIGIN/../cheetah.libs, and ldd prints the paths it makes unresolved.
in_root ldd "$ext" | awk -v libs="$(dirname "$ext")/../cheetah.libs/" '
  /not found/ { print "unresolved: " $0; bad = 1; next }
  /=>/ { path = $3; if (index(path, libs) != 1 && path !~ /^\/(usr\/)?lib(64|\/x86_64-linux-gnu)?\//) { print "outside the wheel and the base system: " $0; bad = 1 } }
  END { exit bad }'
echo "  every library resolves inside the wheel (cheetah.libs) or the base system"

printf '\n\033[1mwheel-check passed in %d s\033[0m\n' "$(( $(date +%s) - began ))"

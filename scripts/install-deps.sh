#!/usr/bin/env bash
# Installs what building and testing Cheetah needs on Debian 12, skipping what is present:
# the Debian packages (RocksDB, zstd, clang for bindgen, g++ for the C++ RocksDB `make wheel`
# compiles and binutils' readelf, unixODBC and the three ODBC drivers,
# openssl for the TLS tests, headless Chromium for the quality report's page)
# and a Python venv with the build backend and the test and comparison libraries.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(librocksdb-dev libzstd-dev clang libclang-dev g++ pkg-config
              unixodbc-dev odbc-postgresql odbc-mariadb libsqliteodbc sqlite3
              postgresql-client mariadb-client python3-venv openssl chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-installed
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  echo "installing Python packages from requirements-dev.txt"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements-dev.txt
  touch "$stamp"
fi

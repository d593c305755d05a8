#!/bin/sh
# Debian's Python 3.11 with the packages pinned in requirements.txt, as a runtime.
#
# It runs in the build sandbox: the runtime's files at $SRC (/src, read-only),
# the runtime written to $DEST (/opt/runtime), the path jobs see it at, so the
# venv's absolute paths hold there. No network: the wheels come with the
# sources (rnx fetches them into wheels/ before uploading).
set -eu
SRC=${SRC:-/src}
DEST=${DEST:-/opt/runtime}
HOST_PYTHON=/usr/bin/python3.11
HOST_LIB=/usr/lib/python3.11

[ -x "$HOST_PYTHON" ] || { echo "build: $HOST_PYTHON is missing (Debian's python3.11)" >&2; exit 1; }
PIP_WHEEL=$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | head -n 1)
[ -n "$PIP_WHEEL" ] || { echo "build: no pip wheel in /usr/share/python-wheels (python3-venv)" >&2; exit 1; }

echo "copying $HOST_PYTHON and its standard library to $DEST/python"
mkdir -p "$DEST/python/bin" "$DEST/python/lib/python3.11"
cp "$HOST_PYTHON" "$DEST/python/bin/python3.11"
ln -s python3.11 "$DEST/python/bin/python3"
# -h copies what Debian's links point at (sitecustomize.py lives in /etc): the
# runtime keeps nothing of the host but its system shared libraries. The test
# suite and the static library for building C extensions stay behind.
(cd "$HOST_LIB" && tar -ch --exclude=./test --exclude='./config-3.11-*' --exclude=__pycache__ .) |
  (cd "$DEST/python/lib/python3.11" && tar -x)

echo "making the venv at $DEST/venv"
"$DEST/python/bin/python3.11" -m venv --without-pip "$DEST/venv"

echo "installing $SRC/requirements.txt from $SRC/wheels (hashes required, no index)"
# pip runs from Debian's wheel and is not installed into the runtime; no pip
# configuration applies, neither files (PIP_CONFIG_FILE=/dev/null reads none)
# nor PIP_* variables of the environment the build was started from.
for var in $(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$var"; done
PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1 \
  "$DEST/venv/bin/python" "$PIP_WHEEL/pip" install --no-index --require-hashes \
  --only-binary=:all: --no-compile --find-links "$SRC/wheels" -r "$SRC/requirements.txt"

echo "compiling bytecode"
# checked against the sources' hashes, not their times: the tree may be copied
"$DEST/venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash \
  "$DEST/python/lib/python3.11" "$DEST/venv/lib/python3.11/site-packages" >/dev/null

"$DEST/venv/bin/python" - "$DEST/.packages" <<'PY'
import importlib.metadata as md, sys
names = sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions())
open(sys.argv[1], "w").write("".join(n + "\n" for n in names))
print("packages:", ", ".join(names))
PY

#!/bin/sh
# Builds {{name}}.wasm from app.py and the WIT contract in wit/.
set -eu
cd "$(dirname "$0")"
if ! command -v componentize-py >/dev/null 2>&1; then
  echo "componentize-py is not installed: pip install componentize-py=={{componentize_py}}" >&2
  exit 1
fi
componentize-py -d wit -w rule componentize app -o {{name}}.wasm
echo "built {{name}}.wasm"

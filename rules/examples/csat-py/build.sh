#!/bin/sh
# Builds csat-py.wasm against the host's WIT contract.
set -eu
cd "$(dirname "$0")"
if ! command -v componentize-py >/dev/null 2>&1; then
  echo "componentize-py is not installed: pip install componentize-py (tests/run installs the tested version)" >&2
  exit 1
fi
componentize-py -d ../../../wit/since_v0.1.0 -w rule componentize app -o csat-py.wasm
echo "built csat-py.wasm"

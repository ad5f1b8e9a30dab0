#!/bin/sh
# Builds smart-actions-js.wasm against the host's WIT contract.
set -eu
cd "$(dirname "$0")"
if ! command -v componentize-js >/dev/null 2>&1; then
  echo "componentize-js is not installed: npm install -g @bytecodealliance/componentize-js (tests/run installs the tested version)" >&2
  exit 1
fi
# The host provides no HTTP: leave out the tool's default wasi:http imports.
componentize-js app.js --wit ../../../wit/since_v0.1.0 --world-name rule \
  --disable http fetch-event -o smart-actions-js.wasm
echo "built smart-actions-js.wasm"

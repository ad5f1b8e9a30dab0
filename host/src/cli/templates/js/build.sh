#!/bin/sh
# Builds {{name}}.wasm from app.js and the WIT contract in wit/.
set -eu
cd "$(dirname "$0")"
if command -v componentize-js >/dev/null 2>&1; then
  componentize=componentize-js
elif [ -x node_modules/.bin/componentize-js ]; then
  componentize=node_modules/.bin/componentize-js
else
  echo "componentize-js is not installed: run npm install here first" >&2
  exit 1
fi
# The host provides no HTTP: leave out the tool's default wasi:http imports.
"$componentize" app.js --wit wit --world-name rule --disable http fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"

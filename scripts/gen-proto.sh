#!/usr/bin/env bash
# Generates typed TypeScript (ts-proto: protobufjs encoders, grpc-js service
# definitions) from proto/*.proto into src/gen/. The generated code is
# committed; `--check` regenerates into a scratch folder and fails when the
# committed copy is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 2; }
out=src/gen
if [ "${1:-}" = "--check" ]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,forceLong=number,useOptionals=none,oneof=unions-value,useDate=false,outputJsonMethods=false,outputPartialMethods=true \
  -I proto proto/*.proto
npx prettier --config .prettierrc.json --ignore-path "" --log-level warn --write "$out" >/dev/null
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out" src/gen >/dev/null; then
    diff -r "$out" src/gen | head -40 >&2
    echo "gen-proto: src/gen is stale; run 'npm run gen' and commit the result" >&2
    exit 1
  fi
  echo "gen-proto: src/gen is up to date"
fi

#!/bin/sh
# Keeps only linux/<arch> of onnxruntime-node's prebuilt binaries (the package ships every platform: ~290 MB).
# Usage: prune-onnxruntime.sh [amd64|arm64|x64]   (Docker's TARGETARCH names are accepted)
set -eu
case "${1:-amd64}" in
  amd64 | x64) keep=x64 ;;
  arm64) keep=arm64 ;;
  *) echo "prune-onnxruntime: unsupported architecture '$1'" >&2; exit 2 ;;
esac
for platform_dir in node_modules/onnxruntime-node/bin/napi-v*/*; do
  [ -d "$platform_dir" ] || continue
  case "$platform_dir" in
    */linux)
      for arch_dir in "$platform_dir"/*; do
        [ "$(basename "$arch_dir")" = "$keep" ] || rm -rf "$arch_dir"
      done ;;
    *) rm -rf "$platform_dir" ;;
  esac
done

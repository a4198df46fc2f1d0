#!/usr/bin/env bash
# Unpacks llama.cpp's source, as the npm package node-llama-cpp ships it (llama/gitRelease.bundle,
# a git bundle), into CACHE/llama.cpp once, and prints that path. Its gguf-py (pure Python +
# numpy) is the independent reference scripts/gguf_vectors.py and scripts/gguf_twins.py use.
set -euo pipefail
cache=${1:?usage: llama_cpp_source.sh CACHE_DIR}
version=3.21.1
mkdir -p "$cache"
if [ ! -d "$cache/llama.cpp/gguf-py" ]; then
  (cd "$cache" && npm pack "node-llama-cpp@$version" --silent >/dev/null &&
   tar xzf "node-llama-cpp-$version.tgz" package/llama/gitRelease.bundle &&
   git clone -q package/llama/gitRelease.bundle llama.cpp 2>/dev/null &&
   rm -rf package "node-llama-cpp-$version.tgz")
fi
echo "$cache/llama.cpp"

# Sourced by tools/gen-k-quant-golden and tools/make-quant-fixtures: builds targets of llama.cpp
# from the source distribution of llama-cpp-python (the oracle's version), in a scratch folder
# OUTSIDE the repository; none of that code is ever committed.
#
#   llama_scratch_build TARGET...   configures once and builds TARGETs (under nice); afterwards
#                                   $LLAMA_SRC and $LLAMA_BUILD name the source and build trees.
#
# Environment: TROUPE_LLAMA_SCRATCH (default /tmp/troupe-llama-scratch), PEER_VERSION (0.3.36),
# PYTHON (a python3 with pip). The GGML flags are tools/peer-llama-server's for this CPU, so the
# arithmetic is the peer's and the oracle's.
LLAMA_VERSION="${PEER_VERSION:-0.3.36}"
LLAMA_SCRATCH="${TROUPE_LLAMA_SCRATCH:-/tmp/troupe-llama-scratch}"
LLAMA_SRC="$LLAMA_SCRATCH/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
LLAMA_BUILD="$LLAMA_SCRATCH/build-$LLAMA_VERSION"

llama_scratch_build() {
  local top
  top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkdir -p "$LLAMA_SCRATCH"
  local sdist="$LLAMA_SCRATCH/llama_cpp_python-$LLAMA_VERSION.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    echo "downloading the llama-cpp-python==$LLAMA_VERSION source distribution" >&2
    "${PYTHON:-python3}" -m pip download -q --no-binary :all: --no-deps \
      "llama-cpp-python==$LLAMA_VERSION" -d "$LLAMA_SCRATCH"
  fi
  [[ -d "$LLAMA_SRC/ggml" ]] || tar -xzf "$sdist" -C "$LLAMA_SCRATCH"
  if [[ ! -f "$LLAMA_BUILD/build.ninja" ]]; then
    # shellcheck disable=SC2046  # the flags are words
    nice -n 10 cmake -S "$LLAMA_SRC" -B "$LLAMA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      $("$top/tools/peer-llama-server" cmake-flags) -DGGML_CUDA=OFF -DBUILD_SHARED_LIBS=OFF \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF >"$LLAMA_SCRATCH/configure.log"
  fi
  echo "building $* in $LLAMA_BUILD (minutes on 2 cores)" >&2
  nice -n 10 cmake --build "$LLAMA_BUILD" -j "$(nproc)" --target "$@" >"$LLAMA_SCRATCH/build.log"
}

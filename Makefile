# The two set-up commands of the README: `make serve` and `make test`. Both work as root on a fresh
# Debian 12 machine: install what is missing, fetch the model, configure, build, then serve / test.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

APT_PACKAGES := g++ cmake ninja-build ccache pkg-config python3 python3-pip python3-venv \
  libcaf-dev libboost1.81-dev libsimdjson-dev catch2 libtomlplusplus-dev libcli11-dev \
  libspdlog-dev libfmt-dev libxxhash-dev libpcre2-dev clang libclang-rt-14-dev

.PHONY: all deps model configure build test test-asan serve clean pydeps

all: build

# Installs only the Debian packages that are missing, so a warm run does no apt work.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

model:
	tools/fetch-model

# A draft model for speculative decoding (scheduler.speculative_model): the default model cut to
# its first DRAFT_LAYERS layers by a committed script (no download), next to it in models/.
DRAFT_LAYERS ?= 6
.PHONY: draft-model
draft-model: model
	tools/make-draft-model --layers $(DRAFT_LAYERS)

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DTROUPE_WERROR=ON $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Python clients of the end-to-end tests (the official openai package, requests, and the two
# client libraries users put in front of an OpenAI server: LangChain's ChatOpenAI and litellm),
# from PyPI into .venv-test/ (git-ignored); they never run on the serving path. The framework
# versions are pinned: their request shapes are what the tests check.
PYDEPS := openai requests langchain-openai==1.8.1 litellm==1.110.2
pydeps:
	@test -x .venv-test/bin/python && \
	  LITELLM_LOCAL_MODEL_COST_MAP=True .venv-test/bin/python -c "import openai, requests, langchain_openai, litellm" 2>/dev/null || \
	  { python3 -m venv .venv-test && .venv-test/bin/pip install -q $(PYDEPS); }

test: deps model build pydeps fuzz-build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS)

# The libFuzzer targets (fuzz/): a clang build of the modules that read untrusted input, in its
# own directory (the main build stays g++). `make test` runs each fuzzer for a few seconds over
# its committed seeds; `make fuzz` runs each for FUZZ_SECONDS (corpus and logs stay in
# $(FUZZ_BUILD)/, see fuzz/run-fuzzers).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
.PHONY: fuzz fuzz-build
$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DTROUPE_FUZZ=ON \
	  -DTROUPE_WERROR=ON -DTROUPE_WITH_CUDA=OFF

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz: model fuzz-build
	fuzz/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The whole project built with ASan + UBSan in $(ASAN_BUILD)/, and the whole ctest suite run on it:
# unit, cli and e2e tests (ctest hands the e2e tests and tools/chaos this build's troupe). A report
# fails its test: ASan and UBSan (-fno-sanitize-recover) abort at the first error, LeakSanitizer
# checks every process at its exit, and the e2e harness and tools/chaos also fail on a report
# found in the server's log (a crash-loop test expects a non-zero exit). Slow: the sanitized
# model runs several times slower (BENCHMARKS.md, "Rerunning the tools"), so the e2e servers get
# a 10-minute step deadline (TROUPE_E2E_STEP_TIMEOUT_MS; a test that sets its own keeps it): at
# the default 30 s a long prefill step was restarted as hung, then ended as poison. A subset:
# make test-asan ASAN_CTEST_ARGS="-R 'actors|e2e_test_faults'".
ASAN_OPTIONS_TEST ?= halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1
UBSAN_OPTIONS_TEST ?= halt_on_error=1:abort_on_error=1:print_stacktrace=1
ASAN_CTEST_ARGS ?=
test-asan: deps model pydeps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DTROUPE_SANITIZE=ON -DTROUPE_WERROR=ON -DTROUPE_WITH_CUDA=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=$(ASAN_OPTIONS_TEST) UBSAN_OPTIONS=$(UBSAN_OPTIONS_TEST) \
	  TROUPE_E2E_STEP_TIMEOUT_MS=600000 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) $(ASAN_CTEST_ARGS)

serve: deps model build
	exec $(BUILD)/troupe serve --host 127.0.0.1 --port 8000

# The comparison of BENCHMARKS.md, troupe against llama.cpp's llama-server and, once
# `tools/peer-vllm-cpu setup` has made its venv, vLLM's CPU build: markdown tables on stdout,
# results.json and bench.png in docs/bench/. Builds llama-server under /tmp/troupe-peer the first
# time. Long (see BENCHMARKS.md); run it on a quiet machine. Shorter: make bench
# BENCH_ARGS="--num-requests 20"; other servers: make bench BENCH_SERVERS="troupe vllm".
BENCH_SERVERS ?= troupe llama-server $(shell tools/peer-vllm-cpu status >/dev/null 2>&1 && echo vllm)
.PHONY: bench
bench: deps model build
	tools/bench-compare --troupe $(BUILD)/troupe --servers $(BENCH_SERVERS) $(BENCH_ARGS)

# The Python environment of the oracle and benchmark tools (tools/gen-*-oracle,
# gen-chat-template-golden, bench-engine, trace-diff), whose first line is
# #!/opt/troupe-oracle/bin/python: llama-cpp-python 0.3.36 (the version the oracles and the peer
# were made with) built from source with the GGML flags of tools/peer-llama-server (native, or
# AVX512 without AMX on CPUs with AMX, where ggml's AMX path crashes), numpy, jinja2 3.1.6.
ORACLE_VENV := /opt/troupe-oracle
ORACLE_LLAMA_CPP_PYTHON := 0.3.36
ORACLE_PIP_PACKAGES := numpy jinja2==3.1.6
.PHONY: oracle-env
oracle-env: deps
	@if $(ORACLE_VENV)/bin/python -c "import sys, numpy, jinja2, llama_cpp; \
	    sys.exit(llama_cpp.__version__ != '$(ORACLE_LLAMA_CPP_PYTHON)')" 2>/dev/null; then \
	  echo "oracle-env: $(ORACLE_VENV) is ready"; \
	else \
	  set -e; flags="$$(tools/peer-llama-server cmake-flags)"; \
	  echo "oracle-env: building llama-cpp-python $(ORACLE_LLAMA_CPP_PYTHON) into $(ORACLE_VENV) ($$flags; minutes)"; \
	  python3 -m venv $(ORACLE_VENV); \
	  nice -n 10 $(ORACLE_VENV)/bin/pip install -q $(ORACLE_PIP_PACKAGES); \
	  CMAKE_ARGS="$$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) nice -n 10 $(ORACLE_VENV)/bin/pip install -q \
	    --no-binary llama-cpp-python --no-cache-dir llama-cpp-python==$(ORACLE_LLAMA_CPP_PYTHON); \
	  $(ORACLE_VENV)/bin/python -c "import llama_cpp; print('oracle-env: llama-cpp-python', llama_cpp.__version__)"; \
	fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

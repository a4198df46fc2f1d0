# make run            installs dependencies, builds, and generates with the model shipped in the repo
# make test           the same, then every test (ctest)
# make test-sanitize  every test under ASan + UBSan (clang), then each fuzzer for a short while
# make fuzz           builds the libFuzzer targets; make fuzz-smoke runs each for FUZZ_SECONDS
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
MODEL ?= models/bringup/tiny-shakespeare-qwen2
CMAKE_FLAGS ?=

DEBIAN_PACKAGES = build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev \
  libhwy-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libpcre2-dev libutf8proc-dev libssl-dev libcpp-httplib-dev chromium nginx python3 python3-jinja2 \
  python3-dev python3-pybind11 pybind11-dev python3-numpy python3-torch \
  python3-regex python3-filelock python3-tqdm python3-requests python3-packaging python3-fsspec python3-yaml

.PHONY: deps build test run serve format clean test-sanitize fuzz fuzz-smoke install-python

SANITIZE_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TARGETS = safetensors config tokenizer_load tokenizer_encode chat_template chat_template_parse \
  reference \
  openai_request gguf
FUZZ_SECONDS ?= 20

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; \
	fi

	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y nodejs npm; }
	@# Hugging Face tokenizers (Rust, Node.js binding): the tokenizer tests' reference
	@# (npm install, not ci: the package names optional platform builds that were never published)
	@[ -d tests/reference-js/node_modules/tokenizers ] || npm install --prefix tests/reference-js --no-audit --no-fund --no-save
	@# The server's clients in its tests: the OpenAI SDK, and playwright-core driving chromium
	@[ -d tests/server-js/node_modules/playwright-core ] || npm ci --prefix tests/server-js --no-audit --no-fund
	@# GGUF references: Hugging Face's @huggingface/gguf reader, and llama.cpp's source as the npm
	@# package node-llama-cpp ships it (its gguf-py writes and quantizes the GGUF test twins)
	@[ -d tests/gguf-js/node_modules/@huggingface/gguf ] || npm ci --prefix tests/gguf-js --no-audit --no-fund
	@[ -d tests/llama-cpp/llama.cpp/gguf-py ] || scripts/llama_cpp_source.sh tests/llama-cpp >/dev/null

build: deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: build
	$(BUILD)/bringup generate --model $(MODEL) --prompt "ROMEO:" --max-new-tokens 120 --seed 7

# The Python module where Debian's /usr/bin/python3 finds it (/usr/local/lib/python3.X/dist-packages).
PYTHON_SITE ?= $(shell /usr/bin/python3 -c 'import sys; print(f"/usr/local/lib/python3.{sys.version_info.minor}/dist-packages")')
install-python: build
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO mkdir -p $(PYTHON_SITE) && $$SUDO rm -rf $(PYTHON_SITE)/bringup && \
	$$SUDO cp -r $(BUILD)/python/bringup $(PYTHON_SITE)/ && echo "installed bringup into $(PYTHON_SITE)"

# The OpenAI-compatible server with the shipped model (chat page at http://127.0.0.1:8080/).
serve: build
	$(BUILD)/bringup serve --model $(MODEL) --port 8080

# Every test under AddressSanitizer + UndefinedBehaviorSanitizer (clang), then each fuzzer briefly.
test-sanitize: deps
	CC=clang CXX=clang++ cmake -S . -B $(SANITIZE_BUILD) -G Ninja -DBRINGUP_SANITIZE=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-smoke

# The libFuzzer targets (fuzz/), one per parser.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DBRINGUP_FUZZ=ON -DBUILD_TESTING=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

# Each fuzzer for FUZZ_SECONDS on a copy of its seed corpus (the committed one stays as it is).
fuzz-smoke: fuzz
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_BUILD)/corpus-$$t && cp -r fuzz/corpus/$$t $(FUZZ_BUILD)/corpus-$$t && \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s" && \
	  $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- $(FUZZ_BUILD)/corpus-$$t 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD)

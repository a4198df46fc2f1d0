# make run   installs dependencies, builds, and generates with the model shipped in the repo
# make test  the same, then every test (ctest)
BUILD ?= build
JOBS ?= $(shell nproc)
MODEL ?= tests/data/golden/qwen2-gqa7-small
CMAKE_FLAGS ?=

DEBIAN_PACKAGES = build-essential cmake ninja-build pkg-config clang-format \
  libhwy-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libpcre2-dev libutf8proc-dev libssl-dev python3 python3-jinja2

.PHONY: deps build test run format clean

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
	@[ -d tests/reference-js/node_modules/tokenizers ] || npm ci --prefix tests/reference-js --no-audit --no-fund

build: deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: build
	$(BUILD)/bringup generate --model $(MODEL) --prompt-ids "1 2 3 4 5 6 7 8 9 10 11 12" --max-new-tokens 24

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD)

# The two commands of the README: `make run` and `make test`.
# Everything is built with CMake; this file only wraps it.
BUILD ?= build
CONFIG ?= conf/pyoco.yaml
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all deps build run test test-asan bench clean format install

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DPYOCO_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@mkdir -p data
	$(BUILD)/core/pyoco server start --config $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Installs bin/pyoco, lib/pyoco/plugins/*.so, include/pyoco/, pyoco.pc and
# lib/cmake/Pyoco/ under PREFIX (DESTDIR is honoured for staging). The build
# is configured for PREFIX first: the server searches the plugin dir compiled
# in from CMAKE_INSTALL_PREFIX, so it must match where the plugins land.
install: deps
	cmake -S . -B $(BUILD) -DPYOCO_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-*

format:
	find core plugins include tests examples bench -name '*.[ch]' 2>/dev/null | xargs clang-format -i

# Release build + every workload of bench/README.md (not part of `make test`).
bench: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPYOCO_TESTS=OFF
	cmake --build build-release -j $(JOBS)
	python3 bench/bench.py --build build-release

# libFuzzer targets (tests/fuzz/README.md): build with clang into build-fuzz,
# then run each target for FUZZ_SECONDS, one at a time, on a scratch copy of
# its seed corpus (new inputs land in build-fuzz/corpus, crashes in
# build-fuzz/artifacts). Runs every target; fails if any crashed.
.PHONY: fuzz
FUZZ_SECONDS ?= 60
# metrics needs the prometheus plugin's sources.
FUZZ_TARGETS ?= $(filter-out $(if $(wildcard plugins/prometheus/CMakeLists.txt),,metrics),\
  $(notdir $(wildcard tests/fuzz/corpus/*)))
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DPYOCO_FUZZ=ON \
	  -DPYOCO_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-fuzz -j $(JOBS) \
	  --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t build-fuzz/artifacts; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	  build-fuzz/tests/fuzz/fuzz_$$t build-fuzz/corpus/$$t \
	    tests/fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) -workers=1 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$$t- \
	    || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in build-fuzz/artifacts)"; exit 1; fi

# The whole ctest suite under ASan+UBSan (leaks included); any sanitizer
# report fails it (scripts/ci-asan.sh).
test-asan: deps
	BUILD=build-asan JOBS=$(JOBS) scripts/ci-asan.sh

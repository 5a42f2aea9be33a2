# The two commands of the README: `make run` and `make test`.
# Everything is built with CMake; this file only wraps it.
BUILD ?= build
CONFIG ?= conf/pyoco.yaml
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-asan bench clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DPYOCO_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/core/pyoco server start --config $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-*

format:
	find core plugins include tests examples bench -name '*.[ch]' 2>/dev/null | xargs clang-format -i

# Release build + every workload of bench/README.md (not part of `make test`).
bench: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPYOCO_TESTS=OFF
	cmake --build build-release -j $(JOBS)
	python3 bench/bench.py --build build-release

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

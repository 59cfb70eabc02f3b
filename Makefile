# Thin wrapper over CMake. The two set-up commands of the README:
#   make run    install deps, build, run the main job
#   make test   install deps, build, run the whole test suite
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=

.PHONY: all deps build debug asan fuzz run test test-asan fuzz-smoke bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

debug: deps
	cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build build-debug -j $(JOBS)

# Address + undefined-behaviour sanitizers (CUDA off: the sanitizers do not see the device).
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Asan -DXSWARM_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)

run: build
	@bash scripts/run-main.sh $(BUILD)/xswarm

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -LE slow

fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Asan -DXSWARM_CUDA=OFF -DXSWARM_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)

fuzz-smoke: fuzz
	@bash scripts/fuzz-smoke.sh build-fuzz

bench: build
	$(BUILD)/xswarm bench

clean:
	rm -rf build build-debug build-asan build-fuzz

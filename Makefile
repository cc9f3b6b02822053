# Entry points: `make run` (`soma train` on Fashion-MNIST with the defaults) and `make test`
# (build + run every test).
# Both install missing Debian packages first (scripts/bootstrap.sh), then build in Release.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
RUN_TARGET ?= soma_cli
RUN_ARGS  ?= train
FORMAT_DIRS := include src tests examples bench tools

.PHONY: all run test bench compare format clean bootstrap configure build loc

all: build

bootstrap:
	@scripts/bootstrap.sh

# Configure once; later builds re-run CMake by themselves when CMakeLists.txt or globs change.
configure: bootstrap
	@test -f $(BUILD_DIR)/build.ninja || \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: configure
	cmake --build $(BUILD_DIR) -j$(JOBS) --target $(RUN_TARGET)
	./$(BUILD_DIR)/soma $(RUN_ARGS)

# ctest -j2: the install test has its own scratch dir and a RESOURCE_LOCK, and never builds
# in $(BUILD_DIR), so it can run beside the gtest cases and the examples.
test: build
	@scripts/bootstrap.sh --test
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2
	@scripts/loc.sh

bench: build
	@set -e; found=0; \
	for b in $(BUILD_DIR)/bench/*; do \
	  [ -x "$$b" ] || continue; found=1; echo "== $$b"; "$$b"; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks built (bench/*.cpp, needs libbenchmark-dev)"

# soma vs PyTorch, side by side (docs/PERFORMANCE.md): installs python3-torch, builds, runs the
# whole harness (~5 min). COMPARE_ARGS=--smoke for a quick run.
COMPARE_ARGS ?=
compare: build
	@scripts/bootstrap.sh --dev
	bench/compare_pytorch $(COMPARE_ARGS)

format:
	@dirs=$$(for d in $(FORMAT_DIRS); do [ -d $$d ] && echo $$d; done); \
	[ -z "$$dirs" ] || find $$dirs -type f \( -name '*.h' -o -name '*.cpp' \) -print0 \
	  | xargs -0 -r clang-format -i

loc:
	@scripts/loc.sh

clean:
	rm -rf $(BUILD_DIR)

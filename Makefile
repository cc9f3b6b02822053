# Entry points: `make run` (`soma train` on Fashion-MNIST with the defaults) and `make test`
# (build + run every test).
# Both install missing Debian packages first (scripts/bootstrap.sh), then build in Release.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
RUN_TARGET ?= soma_cli
RUN_ARGS  ?= train
FORMAT_DIRS := include src tests examples bench tools

.PHONY: all run test bench compare sanitize fuzz docs format clean bootstrap configure build loc

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
	@SOMA_ORT_DIR=$(abspath $(BUILD_DIR))/ort scripts/bootstrap.sh --test
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2
	@scripts/loc.sh

bench: build
	@set -e; found=0; \
	for b in $(BUILD_DIR)/bench/*; do \
	  [ -x "$$b" ] || continue; found=1; echo "== $$b"; "$$b"; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks built (bench/*.cpp, needs libbenchmark-dev)"

# soma vs PyTorch and libtorch C++, side by side (docs/PERFORMANCE.md): installs python3-torch
# and libtorch-dev, builds soma and the libtorch peer (bench/libtorch, its own CMake project,
# never part of `make build`/`make test`), runs the whole harness. COMPARE_ARGS=--smoke for a
# quick run, COMPARE_ARGS="--workloads a,b,d,e" for some rows.
COMPARE_ARGS ?=
LIBTORCH_DIR ?= $(BUILD_DIR)/libtorch-peer
compare: build
	@scripts/bootstrap.sh --dev
	@test -f $(LIBTORCH_DIR)/build.ninja || \
	  cmake -S bench/libtorch -B $(LIBTORCH_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(LIBTORCH_DIR) -j$(JOBS)
	bench/compare_pytorch --libtorch-bench $(LIBTORCH_DIR)/libtorch_bench $(COMPARE_ARGS)

# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (any report
# fails the test). CI runs it after `make test`. Not under the sanitizers: the install test,
# the benchmark smoke runs, and the mpirun tests (dist.*, cli.mpi: several ranks of an ASan
# binary on two cores take minutes, and `make test` runs them in the Release build).
SAN_DIR ?= build-asan
sanitize: bootstrap
	@SOMA_ORT_DIR=$(abspath $(BUILD_DIR))/ort scripts/bootstrap.sh --test
	@test -f $(SAN_DIR)/build.ninja || cmake -S . -B $(SAN_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOMA_SANITIZE=ON -DSOMA_BUILD_BENCH=OFF \
	  -DSOMA_ORT_DIR=$(abspath $(BUILD_DIR))/ort
	cmake --build $(SAN_DIR) -j$(JOBS)
	ctest --test-dir $(SAN_DIR) --output-on-failure -j2 -E '^(install|bench|dist)\.|^cli\.mpi$$'

# libFuzzer targets (clang, ASan + UBSan), each run FUZZ_SECONDS on a scratch copy of its
# checked-in seed corpus (tests/fuzz/corpus/<target>; new inputs stay in the scratch dir).
# A crash leaves its input as crash-* in FUZZ_DIR: add it to tests/fuzz/regressions/<target>.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := idx csv safetensors checkpoint config onnx
fuzz:
	@scripts/bootstrap.sh --fuzz
	@test -f $(FUZZ_DIR)/build.ninja || cmake -S . -B $(FUZZ_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DSOMA_FUZZ=ON \
	  -DSOMA_BUILD_TESTS=OFF -DSOMA_BUILD_EXAMPLES=OFF -DSOMA_BUILD_BENCH=OFF
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(addsuffix _fuzz,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  if (cd $(FUZZ_DIR) && ./tests/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	        corpus-$$t $(CURDIR)/tests/fuzz/corpus/$$t > fuzz-$$t.log 2>&1); then \
	    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $(FUZZ_DIR)/fuzz-$$t.log; \
	  else tail -40 $(FUZZ_DIR)/fuzz-$$t.log; echo "fuzz $$t: FAILED"; exit 1; fi; \
	done

# API reference from the headers (Doxygen from Debian): build/docs/html/index.html.
docs:
	@scripts/bootstrap.sh --docs
	doxygen docs/Doxyfile
	@echo "API reference: build/docs/html/index.html"

format:
	@dirs=$$(for d in $(FORMAT_DIRS); do [ -d $$d ] && echo $$d; done); \
	[ -z "$$dirs" ] || find $$dirs -type f \( -name '*.h' -o -name '*.cpp' \) -print0 \
	  | xargs -0 -r clang-format -i

loc:
	@scripts/loc.sh

clean:
	rm -rf $(BUILD_DIR)

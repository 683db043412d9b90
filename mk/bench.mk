# mk/bench.mk - `make bench`: libfanoise against PyTorch on this machine (docs/performance.md).
# Not part of `make check`: the benchmark measures, the tests check correctness.
#
#   make bench                         all rows, every side, 1 and 2 threads, tables + build/bench/results.json
#   make bench BENCH_ARGS=--quick      fewer repetitions (a smoke run)
#   make bench BENCH_THREADS=1         other thread counts (comma-separated; default 1,2)
#   make bench-kernels                 the kernel microbenchmark alone (GEMM shapes, FMA peak)

BENCH_DIR     := $(BUILD)/bench
BENCH_BIN     := $(BENCH_DIR)/bench
BENCH_SRCS    := bench/bench.c bench/bench_ceiling.c
# The kernel microbenchmark calls the library's internal kernels (src/kernels.h): it is the one
# part of the harness that is not a client of the public header alone.
BENCH_KERNELS := $(BENCH_DIR)/bench_kernels
# The peer needs Debian's python3 (it has python3-torch and numpy); the driver uses only the
# standard library and runs under any python3.
BENCH_PEER_PY ?= /usr/bin/python3
BENCH_DRIVER_PY ?= $(shell command -v python3 || echo $(BENCH_PEER_PY))
BENCH_THREADS ?= 1,2
BENCH_ARGS    ?=

.PHONY: bench bench-bin bench-kernels

$(BENCH_DIR):
	@mkdir -p $@

# -O2 like the library; the harness is a client of the public header only (no -Isrc).
$(BENCH_BIN): $(BENCH_SRCS) bench/bench.h include/fanoise.h $(STLIB) | $(BENCH_DIR)
	$(CC) $(ALL_CFLAGS) $(BENCH_SRCS) -o $@ $(STLIB) $(DEP_LIBS)

$(BENCH_KERNELS): bench/bench_kernels.c src/kernels.h src/internal.h include/fanoise.h $(STLIB) \
                  | $(BENCH_DIR)
	$(CC) $(ALL_CFLAGS) -Isrc $< -o $@ $(STLIB) $(DEP_LIBS)

bench-bin: $(BENCH_BIN) $(BENCH_KERNELS)

bench-kernels: $(BENCH_KERNELS)
	OPENBLAS_NUM_THREADS=1 ./$(BENCH_KERNELS) fma
	./$(BENCH_KERNELS) cores
	OPENBLAS_NUM_THREADS=1 ./$(BENCH_KERNELS) step sizes=784,100,10 batch=64

bench: $(BENCH_BIN) $(BENCH_KERNELS)
	$(BENCH_DRIVER_PY) bench/run.py --bin $(BENCH_BIN) --kernels-bin $(BENCH_KERNELS) \
	    --peer-python $(BENCH_PEER_PY) --threads $(BENCH_THREADS) \
	    --out $(BENCH_DIR)/results.json $(BENCH_ARGS)

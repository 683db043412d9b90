# mk/mpi.mk - the MPI companion (mpi/, docs/scale-out.md): data-parallel training on the core's
# views, gradient hook and iterator sharding, and the sweep runner. Built only where `mpicc` is
# found (scripts/install-deps.sh installs Debian's openmpi-bin and libopenmpi-dev); the library
# itself never links MPI.
#
#   make mpi          build/mpi/libfanoise_mpi.a, build/mpi/fanoise-sweep, build/mpi/dp_train and
#                     the check programs (a message instead when mpicc is missing)
#   make mpi-check    mpirun -np 2 and -np 3: data-parallel equals one process (BP, FA, DFA),
#                     agreement on failures and stops; then the sweep: killed part-way and rerun
#                     equals an uninterrupted serial run, per-seed results equal the programs'.
#                     Skipped with a message when Open MPI is missing. In CI_TARGETS (make ci).

MPICC   ?= $(shell command -v mpicc 2>/dev/null)
MPIRUN  ?= $(shell command -v mpirun 2>/dev/null)
# Root in containers and more ranks than cores on small machines are both normal here.
MPIRUN_FLAGS ?= --allow-run-as-root --oversubscribe
MPI_DIR := $(BUILD)/mpi
MPI_LIB := $(MPI_DIR)/libfanoise_mpi.a
MPI_SWEEP := $(MPI_DIR)/fanoise-sweep
MPI_PROGS := $(MPI_SWEEP) $(MPI_DIR)/dp_train $(MPI_DIR)/mpi_dp_check
SWEEP_SRCS := mpi/sweep_main.c mpi/sweep_spec.c mpi/sweep_exec.c
MPI_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -Iinclude -Impi

.PHONY: mpi mpi-check

ifeq ($(MPICC),)
mpi:
	@echo "mpi: skipped: mpicc not found (scripts/install-deps.sh installs openmpi-bin and libopenmpi-dev)"
mpi-check:
	@echo "mpi-check: skipped: mpicc not found (scripts/install-deps.sh installs openmpi-bin and libopenmpi-dev)"
else
$(MPI_DIR) $(MPI_DIR)/obj:
	@mkdir -p $@

$(MPI_DIR)/obj/%.o: mpi/%.c mpi/fanoise_mpi.h mpi/sweep.h include/fanoise.h | $(MPI_DIR)/obj
	$(MPICC) $(MPI_CFLAGS) -c $< -o $@

$(MPI_LIB): $(MPI_DIR)/obj/fanoise_mpi.o
	rm -f $@
	ar rcs $@ $^

$(MPI_SWEEP): $(patsubst mpi/%.c,$(MPI_DIR)/obj/%.o,$(SWEEP_SRCS))
	$(MPICC) $(MPI_CFLAGS) $^ -o $@

$(MPI_DIR)/dp_train: mpi/dp_train.c $(MPI_LIB) $(STLIB) | $(MPI_DIR)
	$(MPICC) $(MPI_CFLAGS) $< -o $@ $(MPI_LIB) $(STLIB) $(DEP_LIBS)

$(MPI_DIR)/mpi_dp_check: mpi/tests/mpi_dp_check.c $(MPI_LIB) $(STLIB) | $(MPI_DIR)
	$(MPICC) $(MPI_CFLAGS) $< -o $@ $(MPI_LIB) $(STLIB) $(DEP_LIBS)

mpi: $(MPI_LIB) $(MPI_PROGS)

# One BLAS thread per rank: the ranks are the parallelism. The sweep check needs the paper
# programs and data/, which `make data` puts there first (its own check only skips, with a
# message, when run by hand without the data).
mpi-check: mpi paper data
	@if [ -z "$(MPIRUN)" ]; then echo "mpi-check: skipped: mpirun not found"; exit 0; fi; \
	pass=0; fail=0; rm -rf $(MPI_DIR)/check; mkdir -p $(MPI_DIR)/check; \
	for np in 2 3; do \
	    if OPENBLAS_NUM_THREADS=1 $(MPIRUN) $(MPIRUN_FLAGS) -np $$np ./$(MPI_DIR)/mpi_dp_check \
	        $(MPI_DIR)/check > $(MPI_DIR)/check/dp-np$$np.log 2>&1; \
	    then pass=$$((pass+1)); else fail=$$((fail+1)); cat $(MPI_DIR)/check/dp-np$$np.log; fi; \
	    grep -E "largest difference|passed" $(MPI_DIR)/check/dp-np$$np.log; \
	done; \
	if MPIRUN="$(MPIRUN) $(MPIRUN_FLAGS)" sh mpi/tests/sweep_check.sh $(MPI_SWEEP) \
	    $(BUILD)/paper $(MPI_DIR)/check/sweep; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; \
	if [ $$fail -eq 0 ]; then echo "mpi-check: all $$pass groups passed"; \
	else echo "mpi-check: $$fail of $$((pass+fail)) groups failed"; exit 1; fi
endif

CI_TARGETS += mpi-check

# A sweep file over NP ranks of this machine (docs/scale-out.md; on a cluster use srun):
#   make sweep SWEEP_FILE=mpi/sweeps/rules.sweep NP=2
SWEEP_FILE ?= mpi/sweeps/paper.sweep
SWEEP_OUT  ?= out/sweep/$(basename $(notdir $(SWEEP_FILE)))
NP         ?= 2
.PHONY: sweep
sweep: mpi paper
	$(MPIRUN) $(MPIRUN_FLAGS) -np $(NP) ./$(MPI_SWEEP) $(SWEEP_FILE) --out $(SWEEP_OUT)

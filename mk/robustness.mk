# mk/robustness.mk - fuzzing, sanitizers, valgrind, ABI and clang checks. Included by the main
# Makefile. See docs/robustness.md (what each target runs and what it found) and docs/abi.md.
#
#   make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS="net_load csv"]   libFuzzer, N seconds per target
#   make fuzz-merge      adds the working corpus's new-coverage inputs to tests/fuzz/corpus/
#   make fuzz-replay     every committed corpus file through every target (plain build; in check)
#   make fuzz-coverage   line coverage of the parsers reached by each target's corpora (gcov)
#   make asan            whole test suite + corpus replay, -fsanitize=address,undefined
#   make valgrind        every test binary under valgrind (memcheck, full leak check)
#   make tsan            tests/test_threads.c under -fsanitize=thread
#   make abi-check       abidiff of lib/libfanoise.so against abi/libfanoise.abi (in ci)
#   make abi-baseline    regenerates abi/libfanoise.abi (an intended ABI change; docs/abi.md)
#   make clang-check     library, tests, fuzz targets, tool and examples under clang -Werror (in ci)
#   make fuzz-replay     (in check); asan and tsan are in ci
#
# Sanitizer and fuzz builds never touch lib/ or $(BUILD)/obj: each variant compiles the library
# sources into its own directory and links its own static archive.

SAN_CC       ?= clang
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= net_load idx cifar csv api checkpoint load_path
ALL_FUZZ_TARGETS := net_load idx cifar csv api checkpoint load_path

# OpenBLAS's own worker threads make no difference to what the sanitizers check in our code and
# slow the instrumented runs on a shared two-core machine.
SAN_ENV := OPENBLAS_NUM_THREADS=1 \
           ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
FUZZ_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_HEADERS := src/internal.h include/fanoise.h $(wildcard src/*.h)
FUZZ_COMMON := tests/fuzz/fuzz_common.h

# $(call fan_variant,DIR,CC,FLAGS): rules for DIR/libfanoise.a from every src/*.c and for
# DIR/tests/test_X from tests/test_X.c, compiled by CC with the project's warnings and FLAGS.
define fan_variant
$(1)/obj/%.o: src/%.c $$(LIB_HEADERS) | $(1)/obj
	$(2) -std=c11 $$(WARN) $(3) -Iinclude -fPIC -fvisibility=hidden -DFAN_BUILDING_LIBRARY \
	    -c $$< -o $$@
$(1)/libfanoise.a: $$(patsubst src/%.c,$(1)/obj/%.o,$$(SRCS))
	rm -f $$@
	ar rcs $$@ $$^
$(1)/tests/%: tests/%.c $$(TESTUTIL) tests/testutil.h $(1)/libfanoise.a | $(1)/tests
	$(2) -std=c11 $$(WARN) $(3) -Iinclude -Isrc -Itests $$(TEST_EXTRA_INC_$$*) $$< \
	    $$(TEST_EXTRA_SRCS_$$*) $$(TESTUTIL) -o $$@ $(1)/libfanoise.a $$(TEST_LIBS) $$(DEP_LIBS)
$(1)/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $$(FUZZ_COMMON) $(1)/libfanoise.a
	@mkdir -p $$(@D)
	$(2) -std=c11 $$(WARN) $(3) -Iinclude -Isrc -Itests/fuzz $$< tests/fuzz/replay.c -o $$@ \
	    $(1)/libfanoise.a $$(DEP_LIBS)
$(1)/obj $(1)/tests:
	@mkdir -p $$@
endef

# A test that links more than tests/testutil.c (the main Makefile's rule for it lives in another
# mk file) names its extra sources and include flags here, so the sanitizer builds link it too.
TEST_EXTRA_SRCS_test_stats ?= examples/paper/stats.c
TEST_EXTRA_INC_test_stats  ?= -Iexamples/paper

SAN_DIR   := $(BUILD)/asan
TSAN_DIR  := $(BUILD)/tsan
FUZZ_DIR  := $(BUILD)/fuzz
PLAIN_DIR := $(BUILD)/fuzz-replay

# The robustness tests share a fixture header, which the generic test rules do not know about.
ROBUSTNESS_TESTS := test_robustness test_robustness_values
$(foreach d,$(BUILD)/tests $(SAN_DIR)/tests $(TSAN_DIR)/tests,$(addprefix $(d)/,$(ROBUSTNESS_TESTS))): \
    tests/robustness_fixture.h

$(eval $(call fan_variant,$(SAN_DIR),$(SAN_CC),-O1 -g $(SAN_FLAGS)))
$(eval $(call fan_variant,$(TSAN_DIR),$(SAN_CC),-O1 -g $(TSAN_FLAGS)))
$(eval $(call fan_variant,$(FUZZ_DIR),$(FUZZ_CC),-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_FLAGS)))

# Runs the test binaries in $(1) with the environment $(2) and prefix command $(3); one line per
# binary, the log of each failure, a closing count; fails if any failed.
define run_binaries
	@pass=0; fail=0; \
	for t in $(1); do \
	    if $(2) $(3) ./$$t > $$t.log 2>&1; then pass=$$((pass+1)); echo "PASS $$t"; \
	    else fail=$$((fail+1)); echo "FAIL $$t"; tail -n 60 $$t.log; fi; \
	done; \
	echo "$(4): $$pass passed, $$fail failed"; test $$fail -eq 0
endef

# ---- fuzzing --------------------------------------------------------------------------------

FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(ALL_FUZZ_TARGETS))

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(FUZZ_DIR)/libfanoise.a
	$(FUZZ_CC) -std=c11 $(WARN) -O1 -g -fsanitize=fuzzer $(FUZZ_FLAGS) -Iinclude -Isrc -Itests/fuzz \
	    $< -o $@ $(FUZZ_DIR)/libfanoise.a $(DEP_LIBS)

# New inputs go to $(FUZZ_DIR)/corpus/T (not committed); tests/fuzz/corpus/T seeds it. Crashes
# land in $(FUZZ_DIR)/artifacts/T/; copy a minimised one into tests/fuzz/corpus/T so replay
# keeps failing until the bug is fixed. Inputs are at most 8 KiB (16 KiB for CIFAR, whose records
# are 3,073 or 3,074 bytes): a few records of each format reach every branch, and small inputs
# keep executions fast.
fuzz: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	    echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	    OPENBLAS_NUM_THREADS=1 ./$(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=$$(case $$t in cifar) echo 16384;; *) echo 8192;; esac) \
	        -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ \
	        $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t > $(FUZZ_DIR)/fuzz_$$t.log 2>&1; \
	    rc=$$?; grep -E '^(#[0-9]+.*DONE|stat::|INFO: Loaded|INFO: seed corpus)' \
	        $(FUZZ_DIR)/fuzz_$$t.log; \
	    if [ $$rc -ne 0 ]; then tail -n 80 $(FUZZ_DIR)/fuzz_$$t.log; \
	        echo "fuzz_$$t FAILED (log: $(FUZZ_DIR)/fuzz_$$t.log)"; exit 1; fi; \
	done

# Minimises the working corpus of each target in FUZZ_TARGETS into tests/fuzz/corpus/T (keeps
# only inputs that add coverage; inputs that crash are left out and saved as artifacts); review
# the result before committing it.
fuzz-merge: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/artifacts/$$t; \
	    OPENBLAS_NUM_THREADS=1 ./$(FUZZ_DIR)/fuzz_$$t -merge=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ \
	        -max_len=$$(case $$t in cifar) echo 16384;; *) echo 8192;; esac) \
	        tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus/$$t 2>&1 | tail -n 2; \
	done

# The replay drivers link the ordinary static library built by the ordinary compiler: corpus
# files are regression tests of the library as shipped.
REPLAYS := $(patsubst %,$(PLAIN_DIR)/replay_%,$(ALL_FUZZ_TARGETS))

$(PLAIN_DIR)/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_COMMON) $(STLIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc -Itests/fuzz $< tests/fuzz/replay.c -o $@ $(STLIB) $(DEP_LIBS)

# $(1) = directory of the replay binaries.
define replay_all
	@pass=0; fail=0; \
	for t in $(ALL_FUZZ_TARGETS); do \
	    if $(2) ./$(1)/replay_$$t tests/fuzz/corpus/$$t > $(1)/replay_$$t.log 2>&1; then \
	        pass=$$((pass+1)); echo "PASS $$(tail -n 1 $(1)/replay_$$t.log)"; \
	    else fail=$$((fail+1)); echo "FAIL replay_$$t"; tail -n 30 $(1)/replay_$$t.log; fi; \
	done; \
	echo "replay: $$pass passed, $$fail failed"; test $$fail -eq 0
endef

fuzz-replay: $(REPLAYS)
	$(call replay_all,$(PLAIN_DIR),OPENBLAS_NUM_THREADS=1)

# Line coverage that the corpora (committed seeds plus the working corpus of past `make fuzz`
# runs) reach in the files the targets exist to test: gcc --coverage, replayed, gcov. The three
# data targets share src/dataset_load.c and src/byte_source.c and are measured together. An input that fails its
# target aborts the replay before gcov's data is written, so a failing replay is redone one
# input per process.
COV_DIR := $(BUILD)/fuzz-cov
COV_GROUPS := net_load:src/io.c idx+cifar+csv:src/dataset_load.c+src/byte_source.c \
              checkpoint:src/checkpoint.c+src/optimizer.c+src/iter_state.c \
              load_path:src/io.c+src/dataset_load.c+src/byte_source.c+src/fileio.c+src/options.c \
              api:$(subst $(eval) ,+,$(filter-out src/dataset_load.c src/dataset_transform.c \
                  src/byte_source.c src/fileio.c src/file_replace.c src/options.c,$(SRCS)))
$(eval $(call fan_variant,$(COV_DIR),$(CC),-O0 -g --coverage))

fuzz-coverage: $(patsubst %,$(COV_DIR)/replay_%,$(ALL_FUZZ_TARGETS))
	@for g in $(COV_GROUPS); do \
	    rm -f $(COV_DIR)/obj/*.gcda; \
	    for t in $$(echo $${g%%:*} | tr + ' '); do \
	        dirs="tests/fuzz/corpus/$$t"; \
	        [ -d $(FUZZ_DIR)/corpus/$$t ] && dirs="$$dirs $(FUZZ_DIR)/corpus/$$t"; \
	        if ! OPENBLAS_NUM_THREADS=1 ./$(COV_DIR)/replay_$$t $$dirs > $(COV_DIR)/cov_$$t.log 2>&1; then \
	            bad=0; for f in $$(find $$dirs -type f); do \
	                OPENBLAS_NUM_THREADS=1 ./$(COV_DIR)/replay_$$t $$f > /dev/null 2>&1 || bad=$$((bad+1)); \
	            done; echo "replay_$$t: $$bad inputs fail their target (known findings)"; \
	        fi; \
	        echo "replay_$$t: $$(find $$dirs -type f | wc -l) inputs"; \
	    done; \
	    for s in $$(echo $${g#*:} | tr + ' '); do \
	        echo "  $$s: $$(gcov -n -o $(COV_DIR)/obj $$s 2>/dev/null | grep -A1 "^File '$$s'" \
	            | sed -n 's/^Lines executed:/lines executed /p')"; \
	    done; \
	done

# ---- sanitizers and valgrind ----------------------------------------------------------------

SAN_TESTS := $(patsubst tests/%.c,$(SAN_DIR)/tests/%,$(sort $(wildcard tests/test_*.c)))
SAN_REPLAYS := $(patsubst %,$(SAN_DIR)/replay_%,$(ALL_FUZZ_TARGETS))

# tests/test_cli.c runs the tool next to it: the ASan test runs an ASan build of the tool.
$(SAN_DIR)/bin/fanoise: $(CLI_SRCS) $(wildcard cli/*.h) include/fanoise.h $(SAN_DIR)/libfanoise.a
	@mkdir -p $(@D)
	$(SAN_CC) -std=c11 $(WARN) -O1 -g $(SAN_FLAGS) -Iinclude $(CLI_SRCS) -o $@ \
	    $(SAN_DIR)/libfanoise.a $(DEP_LIBS)
$(SAN_DIR)/tests/test_cli: $(SAN_DIR)/bin/fanoise

asan: $(SAN_TESTS) $(SAN_REPLAYS)
	$(call run_binaries,$(SAN_TESTS),$(SAN_ENV),,asan)
	$(call replay_all,$(SAN_DIR),$(SAN_ENV))

VALGRIND ?= valgrind
VALGRIND_FLAGS := --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
                  --track-origins=yes --quiet

valgrind: $(TESTS)
	$(call run_binaries,$(TESTS),OPENBLAS_NUM_THREADS=1,$(VALGRIND) $(VALGRIND_FLAGS),valgrind)

# clang 14's TSan aborts ("unexpected memory mapping") on kernels that randomise mmap with more
# bits than it expects; without address-space randomisation it runs everywhere.
TSAN_TESTS := $(TSAN_DIR)/tests/test_threads
tsan: $(TSAN_TESTS)
	$(call run_binaries,$(TSAN_TESTS),OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1,setarch $$(uname -m) -R,tsan)

# ---- ABI ------------------------------------------------------------------------------------

ABI_DIR := $(BUILD)/abi
# Public types only, without paths or line numbers, so the baseline changes only with the ABI.
ABIDW_FLAGS := --headers-dir include --drop-private-types --no-corpus-path --no-comp-dir-path \
               --no-show-locs --no-elf-needed

# Two comparisons. Against every released baseline (abi/libfanoise-X.Y.Z.abi of this major),
# ignoring added symbols: nothing released may change or go (abidiff already filters harmless
# changes such as appended enumerators; abi/appended.suppr names the other allowed kind, fields
# appended to fan_progress). Against abi/libfanoise.abi, exactly: every addition is
# deliberate and committed with the change that makes it.
RELEASED_ABIS := $(sort $(wildcard abi/libfanoise-$(VERSION_MAJOR).*.abi))

abi-check: $(SHLIB)
	@mkdir -p $(ABI_DIR)
	@abidw $(ABIDW_FLAGS) --out-file $(ABI_DIR)/libfanoise.abi $(SHLIB)
	@for base in $(RELEASED_ABIS); do \
	    abidiff --no-show-locs --no-added-syms --suppressions abi/appended.suppr $$base \
	        $(ABI_DIR)/libfanoise.abi > $(ABI_DIR)/released.txt; \
	    rc=$$?; \
	    if [ $$rc -ne 0 ]; then cat $(ABI_DIR)/released.txt; \
	        echo "abi: INCOMPATIBLE with the released $$base (status $$rc): within a major version only additions are allowed (docs/abi.md)"; \
	        exit 1; fi; \
	    echo "abi: $(SHLIB) keeps everything of $$base"; \
	done
	@abidiff --no-show-locs abi/libfanoise.abi $(ABI_DIR)/libfanoise.abi > $(ABI_DIR)/abidiff.txt; \
	rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "abi: $(SHLIB) matches abi/libfanoise.abi"; exit 0; fi; \
	cat $(ABI_DIR)/abidiff.txt; \
	if [ $$((rc & 3)) -ne 0 ]; then echo "abi: abidiff failed with status $$rc"; \
	elif [ $$((rc & 8)) -ne 0 ]; then \
	    echo "abi: INCOMPATIBLE change (a symbol was removed): needs a new SONAME major (docs/abi.md)"; \
	else echo "abi: the ABI changed (report above). Within a major version only additions are" \
	    "allowed; if this is one, run 'make abi-baseline' and commit abi/ (docs/abi.md)"; fi; \
	exit 1

abi-baseline: $(SHLIB)
	@mkdir -p abi
	abidw $(ABIDW_FLAGS) --out-file abi/libfanoise.abi $(SHLIB)
	@echo "abi: wrote abi/libfanoise.abi; review 'git diff abi/' and commit it"

# ---- clang --------------------------------------------------------------------------------

CLANG ?= clang
CLANGXX ?= clang++
# Every C file of the tree with the include directories its neighbours need, and the C++ examples.
CLANG_SRCS := $(sort $(wildcard tests/*.c tests/fuzz/*.c examples/*.c examples/*/*.c bench/*.c \
                                bindings/*/tests/*.c cli/*.c))
CLANG_INCS := -Iinclude -Isrc -Itests -Itests/fuzz -Iexamples/paper -Ibench
CLANG_CXX_SRCS := $(sort $(wildcard examples/cpp/*.cpp))

# Front-end only: every clang warning comes from the front end, and this keeps the check fast.
clang-check:
	@fail=0; n=0; \
	for f in $(SRCS); do n=$$((n+1)); \
	    $(CLANG) -std=c11 $(WARN) -Werror -O2 -fsyntax-only -Iinclude -DFAN_BUILDING_LIBRARY $$f \
	        || { fail=$$((fail+1)); echo "clang-check: $$f"; }; \
	done; \
	for f in $(CLANG_SRCS); do n=$$((n+1)); \
	    $(CLANG) -std=c11 $(WARN) -Werror -O2 -fsyntax-only $(CLANG_INCS) $$f \
	        || { fail=$$((fail+1)); echo "clang-check: $$f"; }; \
	done; \
	for f in $(CLANG_CXX_SRCS); do n=$$((n+1)); \
	    $(CLANGXX) -std=c++17 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -Iinclude \
	        -Iexamples/cpp $$f || { fail=$$((fail+1)); echo "clang-check: $$f"; }; \
	done; \
	n=$$((n+2)); \
	$(CLANG) -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c include/fanoise.h \
	    || fail=$$((fail+1)); \
	$(CLANGXX) -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ include/fanoise.h \
	    || fail=$$((fail+1)); \
	echo "clang-check: $$((n - fail)) passed, $$fail failed"; test $$fail -eq 0

# ---- FAN_NODISCARD -------------------------------------------------------------------------

# Under C2x and C++17, with gcc and clang: `(void)call()` compiles under -Werror, and an ignored
# status still fails it. The objects are built (not just parsed): gcc reports unused results
# only when it generates code.
NODISCARD_CHECK := tests/nodiscard_check.c
nodiscard-check:
	@for c in "$(CC) -std=c2x" "$(CLANG) -std=c2x" "g++ -x c++ -std=c++17" \
	          "$(CLANGXX) -x c++ -std=c++17"; do \
	    $$c -Wall -Wextra -Wpedantic -Werror -Iinclude -c $(NODISCARD_CHECK) -o /dev/null \
	        || { echo "nodiscard-check: a cast to void did not silence $$c"; exit 1; }; \
	    if $$c -Wall -Wextra -Werror -DFAN_PROBE_IGNORED -Iinclude -c $(NODISCARD_CHECK) \
	        -o /dev/null 2>/dev/null; then \
	        echo "nodiscard-check: an ignored status went unreported by $$c"; exit 1; fi; \
	done; echo "nodiscard-check: (void) silences FAN_NODISCARD, an ignored status warns (C2x, C++17; gcc, clang)"

.PHONY: fuzz fuzz-merge fuzz-replay fuzz-coverage asan valgrind tsan abi-check abi-baseline \
        clang-check nodiscard-check

# nodiscard-check needs clang and g++, the ABI check abigail-tools: both run in make ci.
CHECK_TARGETS += fuzz-replay
CI_TARGETS += abi-check clang-check asan tsan nodiscard-check

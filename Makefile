# libfanoise - plain GNU make build.
#
#   make                  lib/libfanoise.{a,so}, pkgconfig/fanoise.pc and the tool build/bin/fanoise
#   make check            builds and runs every check that needs only the build dependencies;
#                         ends with one line "N passed, N failed"
#   make ci               make check plus the stages that need more tools (ABI, docs, sanitizers,
#                         clang, C++, Python); what .ci/run calls
#   make demo             the main job (scripts/demo.sh)
#   make install          PREFIX=/usr/local DESTDIR= (runs ldconfig for a system prefix)
#   V=1                   shows every command (default: one short line per file built)
#   CC=clang              any C11 compiler; optional flags are probed, not assumed
#
# Fragments: every mk/*.mk is included (sorted by name). A fragment adds its own targets and says
# where they run:
#   CHECK_TARGETS += name   `make check` (and `make ci`) runs it; it must need nothing beyond the
#                           build dependencies (scripts/install-deps.sh --build-only)
#   CI_TARGETS += name      only `make ci` runs it (any tool scripts/install-deps.sh installs)
# Each target runs as `$(MAKE) name` with its output in $(BUILD)/check/name.log (shown on failure,
# and as it runs with V=1). Its exit status decides pass or fail; a target that runs several checks
# prints one line "label: P passed, F failed" per group, and the summary adds those up instead of
# counting the target once.

VERSION_MAJOR := $(shell sed -n 's/^\#define FANOISE_VERSION_MAJOR \([0-9]*\)/\1/p' include/fanoise.h)
VERSION_MINOR := $(shell sed -n 's/^\#define FANOISE_VERSION_MINOR \([0-9]*\)/\1/p' include/fanoise.h)
VERSION_PATCH := $(shell sed -n 's/^\#define FANOISE_VERSION_PATCH \([0-9]*\)/\1/p' include/fanoise.h)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

CC      ?= cc
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PCDIR   ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/fanoise
DESTDIR ?=
BUILD   ?= build
LIBOUT  ?= lib
WERROR  ?= 1
V       ?= 0

MAKEFLAGS += --no-print-directory

# Quiet by default: `@$(call msg,CC,file)` prints a short line, `$(Q)` hides the command.
ifeq ($(V),1)
Q :=
msg = :
else
Q := @
msg = printf '  %-7s %s\n' '$(1)' '$(2)'
endif

# $(call cc_option,FLAG): FLAG if $(CC) accepts it (as an error-free compile of an empty file).
cc_option = $(shell $(CC) -Werror $(1) -x c -c /dev/null -o /dev/null >/dev/null 2>&1 && echo $(1))

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wformat=2 -Wcast-qual -Wundef
ifeq ($(WERROR),1)
WARN    += -Werror
endif
# -fvect-cost-model=dynamic lets gcc vectorise loops its default cost model at -O2 refuses;
# clang has no such flag (and vectorises at -O2 anyway). Probed once per make invocation.
ifndef OPT
OPT     := -O2 -g $(call cc_option,-fvect-cost-model=dynamic)
endif
CFLAGS  ?= $(OPT)
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -Iinclude
# -fno-math-errno: the library never reads errno, and without it gcc must keep sqrtf scalar, which
# stopped Adam's update loop from vectorising (noise row of make bench: +45%, bit-identical).
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DFAN_BUILDING_LIBRARY \
              $(call cc_option,-fno-math-errno)
DEP_LIBS := -llapacke -lopenblas -lz -lm
TEST_LIBS := -lcmocka -lpthread

SONAME  := libfanoise.so.$(VERSION_MAJOR)
SHLIB   := $(LIBOUT)/libfanoise.so.$(VERSION)
STLIB   := $(LIBOUT)/libfanoise.a

SRCS    := $(sort $(wildcard src/*.c))
OBJS    := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/test_*.c)))
TESTUTIL := tests/testutil.c
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(sort $(wildcard examples/*.c)))
CLI_SRCS := $(sort $(wildcard cli/*.c))
CLI_OBJS := $(patsubst cli/%.c,$(BUILD)/cli/%.o,$(CLI_SRCS))
CLI_BIN  := $(BUILD)/bin/fanoise

.PHONY: all lib cli examples tests check ci build-all demo data install uninstall clean header-check \
        exports-check run-tests FORCE

all: lib pkgconfig/fanoise.pc $(CLI_BIN)

lib: $(STLIB) $(SHLIB) $(LIBOUT)/$(SONAME) $(LIBOUT)/libfanoise.so

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) include/fanoise.h Makefile | $(BUILD)/obj
	@$(call msg,CC,$<)
	$(Q)$(CC) $(LIB_CFLAGS) $(FILE_CFLAGS) -c $< -o $@

# The optimizer's update loops copy each value for the undo as they update it; GCC would split
# the copies out into memmove calls (a second pass over every array), which this keeps it from.
$(BUILD)/obj/optimizer.o: FILE_CFLAGS := $(call cc_option,-fno-tree-loop-distribute-patterns)

$(STLIB): $(OBJS) | lib-dir
	@$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $(OBJS)

$(SHLIB): $(OBJS) src/fanoise.map | lib-dir
	@$(call msg,LD,$@)
	$(Q)$(CC) -shared -o $@ $(OBJS) -Wl,-soname,$(SONAME) -Wl,--version-script=src/fanoise.map \
	    -Wl,--no-undefined $(LDFLAGS) $(DEP_LIBS)

$(LIBOUT)/$(SONAME): $(SHLIB)
	$(Q)ln -sf $(notdir $(SHLIB)) $@

$(LIBOUT)/libfanoise.so: $(LIBOUT)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

# Regenerated on every build so that it always carries the PREFIX of this invocation. Libs.private
# lists what a fully static link needs beyond libfanoise.a: Debian's liblapacke.a calls the
# reference LAPACK (liblapack.a), written in Fortran, hence the Fortran runtime; OpenBLAS needs
# threads. scripts/install-check.sh links a consumer with -static to prove the list complete.
pkgconfig/fanoise.pc: pkgconfig/fanoise.pc.in include/fanoise.h FORCE
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@

lib-dir:
	@mkdir -p $(LIBOUT)
FORCE:
$(BUILD)/obj $(BUILD)/tests $(BUILD)/examples $(BUILD)/cli $(BUILD)/bin:
	@mkdir -p $@

# Tests link the static library so that internal (hidden) helpers stay testable through it.
$(BUILD)/tests/%: tests/%.c $(TESTUTIL) tests/testutil.h $(STLIB) | $(BUILD)/tests
	@$(call msg,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Isrc -Itests -DFAN_TEST_MAKE_VERSION=\"$(VERSION)\" $< $(TESTUTIL) -o $@ \
	    $(STLIB) $(TEST_LIBS) $(DEP_LIBS)

tests: $(TESTS)

$(BUILD)/examples/%: examples/%.c $(STLIB) | $(BUILD)/examples
	@$(call msg,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(DEP_LIBS)

examples: $(EXAMPLES)

# The command-line tool: cli/*.c use only the public header (no -Isrc) and link the static library,
# so the tool runs from the build tree and, installed, needs no run-time linker setup.

$(BUILD)/cli/%.o: cli/%.c $(wildcard cli/*.h) include/fanoise.h | $(BUILD)/cli
	@$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CLI_BIN): $(CLI_OBJS) $(STLIB) | $(BUILD)/bin
	@$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(CLI_OBJS) -o $@ $(STLIB) $(DEP_LIBS)

cli: $(CLI_BIN)

# tests/test_cli.c runs the tool it finds next to itself (../bin/fanoise).
$(BUILD)/tests/test_cli: $(CLI_BIN)

# Runs every test binary; prints one line per binary and one summary line counting the cmocka
# test cases; fails if any binary failed.
run-tests: $(TESTS)
	@pass=0; fail=0; bad=0; \
	for t in $(TESTS); do \
	    if ./$$t > $$t.log 2>&1; then echo "PASS $$t"; else bad=$$((bad+1)); echo "FAIL $$t"; cat $$t.log; fi; \
	    p=$$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' $$t.log); \
	    f=$$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' $$t.log); \
	    pass=$$((pass+$${p:-0})); fail=$$((fail+$${f:-0})); \
	done; \
	[ $$bad -gt 0 ] && [ $$fail -eq 0 ] && fail=$$bad; \
	echo "tests: $$pass passed, $$fail failed"; test $$bad -eq 0

# The header as C11 -pedantic; its C++ side is checked by cpp-check (make ci), which needs a C++
# compiler that the build does not.
header-check:
	$(Q)$(CC) -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c include/fanoise.h
	@echo "header-check: include/fanoise.h compiles as C11 -pedantic"

exports-check: $(SHLIB)
	@nm -D --defined-only $(SHLIB) | awk '$$2 ~ /[TDBR]/ {print $$3}' | grep -v '^FANOISE_' \
	    | sort > $(BUILD)/exports.txt
	@if grep -v '^fan_' $(BUILD)/exports.txt; then echo "non-fan_ symbols exported"; exit 1; fi
	@diff -u abi/exports.txt $(BUILD)/exports.txt || \
	    { echo "exported symbols differ from abi/exports.txt (see docs/abi.md)"; exit 1; }
	@echo "exports: $$(wc -l < $(BUILD)/exports.txt) fan_ symbols, as in abi/exports.txt"

# Everything `make` and the checks build, in one stage so that compiler errors show up there.
BUILD_ALL := all tests examples
CHECK_TARGETS :=
CI_TARGETS :=
-include $(sort $(wildcard mk/*.mk))

build-all: $(BUILD_ALL)

CHECK_STAGES := build-all header-check exports-check run-tests $(CHECK_TARGETS)
CHECK_LOGS   := $(BUILD)/check

# The stages run one after another (each with this make's -j); see the fragments note at the top.
check:
	+@MAKE='$(MAKE)' V='$(V)' sh scripts/run-checks.sh $(CHECK_LOGS) $(CHECK_STAGES)

ci:
	+@MAKE='$(MAKE)' V='$(V)' FANOISE_CI=1 sh scripts/run-checks.sh $(CHECK_LOGS) \
	    $(CHECK_STAGES) $(CI_TARGETS)

demo: all examples
	./scripts/demo.sh

# Fashion-MNIST, MNIST-10k and the scikit-learn digits under data/ (see data/README.md).
data:
	sh scripts/get-data.sh

# ldconfig refreshes the run-time linker's cache, without which a program linked against the new
# libfanoise.so.0 fails to start. It only helps for a directory the linker searches (its
# configured list, LD_SYSTEM_DIRS); staged installs (DESTDIR) leave it to the package manager.
# The CMake package's static target links what Libs.private of fanoise.pc lists.
CMAKE_STATIC_LIBS = $(subst $(eval) ,;,$(patsubst -l%,%,$(shell sed -n 's/^Libs.private: //p' \
                    pkgconfig/fanoise.pc.in)))
LDCONFIG ?= $(shell command -v ldconfig 2>/dev/null || echo /sbin/ldconfig)
# The trusted directories, then those of /etc/ld.so.conf as ldconfig reports them.
LD_SYSTEM_DIRS ?= /lib /usr/lib /lib64 /usr/lib64 \
                  $(shell $(LDCONFIG) -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p')

install: all $(CLI_BIN)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(CMAKEDIR)
	install -m 644 include/fanoise.h $(DESTDIR)$(INCDIR)/fanoise.h
	install -m 644 include/fanoise.hpp $(DESTDIR)$(INCDIR)/fanoise.hpp
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/libfanoise.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfanoise.so
	install -m 644 pkgconfig/fanoise.pc $(DESTDIR)$(PCDIR)/fanoise.pc
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	    -e 's|@SONAME@|$(SONAME)|g' -e 's|@SHLIB@|$(notdir $(SHLIB))|g' \
	    -e "s|@LIB_TO_INC@|$$(realpath -m --relative-to=$(LIBDIR) $(INCDIR))|g" \
	    -e 's|@STATIC_LIBS@|$(CMAKE_STATIC_LIBS)|g' cmake/fanoiseConfig.cmake.in \
	    > $(DESTDIR)$(CMAKEDIR)/fanoiseConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	    cmake/fanoiseConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/fanoiseConfigVersion.cmake
	install -m 755 $(CLI_BIN) $(DESTDIR)$(BINDIR)/fanoise
	@if [ -n "$(DESTDIR)" ]; then \
	    echo "install: staged in DESTDIR; run ldconfig after copying to $(LIBDIR)"; \
	elif echo " $(LD_SYSTEM_DIRS) " | grep -q " $(LIBDIR) "; then \
	    echo "install: $(LDCONFIG)"; $(LDCONFIG) || \
	    echo "install: $(LDCONFIG) failed; run it as root, or programs cannot find $(SONAME)"; \
	else \
	    echo "install: $(LIBDIR) is not searched by the run-time linker: set" \
	         "LD_LIBRARY_PATH=$(LIBDIR), link with -Wl,-rpath,$(LIBDIR), or add it to" \
	         "/etc/ld.so.conf.d/ and run ldconfig"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/fanoise.h $(DESTDIR)$(INCDIR)/fanoise.hpp \
	    $(DESTDIR)$(LIBDIR)/libfanoise.a $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libfanoise.so \
	    $(DESTDIR)$(PCDIR)/fanoise.pc $(DESTDIR)$(BINDIR)/fanoise \
	    $(DESTDIR)$(CMAKEDIR)/fanoiseConfig.cmake $(DESTDIR)$(CMAKEDIR)/fanoiseConfigVersion.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null

clean:
	rm -rf $(BUILD) $(LIBOUT) pkgconfig/fanoise.pc

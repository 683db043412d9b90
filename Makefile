# libfanoise - plain GNU make build. `make` builds lib/libfanoise.{a,so}; `make check` runs the
# tests; `make demo` runs the main job; `make install PREFIX=... DESTDIR=...`.

VERSION_MAJOR := $(shell sed -n 's/^\#define FANOISE_VERSION_MAJOR \([0-9]*\)/\1/p' include/fanoise.h)
VERSION_MINOR := $(shell sed -n 's/^\#define FANOISE_VERSION_MINOR \([0-9]*\)/\1/p' include/fanoise.h)
VERSION_PATCH := $(shell sed -n 's/^\#define FANOISE_VERSION_PATCH \([0-9]*\)/\1/p' include/fanoise.h)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

CC      ?= cc
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PCDIR   ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
BUILD   ?= build
WERROR  ?= 1

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wformat=2 -Wcast-qual -Wundef
ifeq ($(WERROR),1)
WARN    += -Werror
endif
OPT     ?= -O2 -g -fvect-cost-model=dynamic
CFLAGS  ?= $(OPT)
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -Iinclude
# -fno-math-errno: the library never reads errno, and without it gcc must keep sqrtf scalar, which
# stopped Adam's update loop from vectorising (noise row of make bench: +45%, bit-identical).
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DFAN_BUILDING_LIBRARY -fno-math-errno
DEP_LIBS := -llapacke -lopenblas -lz -lm
TEST_LIBS := -lcmocka -lpthread

SONAME  := libfanoise.so.$(VERSION_MAJOR)
SHLIB   := lib/libfanoise.so.$(VERSION)
STLIB   := lib/libfanoise.a

SRCS    := $(sort $(wildcard src/*.c))
OBJS    := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/test_*.c)))
TESTUTIL := tests/testutil.c
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(sort $(wildcard examples/*.c)))

.PHONY: all lib examples tests check demo data install uninstall clean header-check \
        exports-check run-tests FORCE

all: lib pkgconfig/fanoise.pc

lib: $(STLIB) $(SHLIB) lib/$(SONAME) lib/libfanoise.so

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) include/fanoise.h Makefile | $(BUILD)/obj
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(STLIB): $(OBJS) | lib-dir
	rm -f $@
	ar rcs $@ $(OBJS)

$(SHLIB): $(OBJS) src/fanoise.map | lib-dir
	$(CC) -shared -o $@ $(OBJS) -Wl,-soname,$(SONAME) -Wl,--version-script=src/fanoise.map \
	    -Wl,--no-undefined $(LDFLAGS) $(DEP_LIBS)

lib/$(SONAME): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@

lib/libfanoise.so: lib/$(SONAME)
	ln -sf $(SONAME) $@

# Regenerated on every build so that it always carries the PREFIX of this invocation.
pkgconfig/fanoise.pc: pkgconfig/fanoise.pc.in include/fanoise.h FORCE
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@

lib-dir:
	@mkdir -p lib
FORCE:
$(BUILD)/obj $(BUILD)/tests $(BUILD)/examples:
	@mkdir -p $@

# Tests link the static library so that internal (hidden) helpers stay testable through it.
$(BUILD)/tests/%: tests/%.c $(TESTUTIL) tests/testutil.h $(STLIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Isrc -Itests -DFAN_TEST_MAKE_VERSION=\"$(VERSION)\" $< $(TESTUTIL) -o $@ \
	    $(STLIB) $(TEST_LIBS) $(DEP_LIBS)

tests: $(TESTS)

$(BUILD)/examples/%: examples/%.c $(STLIB) | $(BUILD)/examples
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(DEP_LIBS)

examples: $(EXAMPLES)

# Runs every test binary; prints one summary line counting the cmocka test cases; fails if any
# binary failed.
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

header-check:
	$(CC) -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c include/fanoise.h
	g++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ include/fanoise.h

exports-check: $(SHLIB)
	@nm -D --defined-only $(SHLIB) | awk '$$2 ~ /[TDBR]/ {print $$3}' | grep -v '^FANOISE_' \
	    | sort > $(BUILD)/exports.txt
	@if grep -v '^fan_' $(BUILD)/exports.txt; then echo "non-fan_ symbols exported"; exit 1; fi
	@diff -u abi/exports.txt $(BUILD)/exports.txt || \
	    { echo "exported symbols differ from abi/exports.txt (see docs/abi.md)"; exit 1; }
	@echo "exports: $$(wc -l < $(BUILD)/exports.txt) fan_ symbols, as in abi/exports.txt"

# Feature areas add their own targets in mk/*.mk and append the ones `make check` must run to
# CHECK_TARGETS (bindings, install check, fuzz corpus replay, ABI, ...).
CHECK_TARGETS :=
-include $(sort $(wildcard mk/*.mk))

check: all header-check exports-check examples run-tests $(CHECK_TARGETS)

demo: all examples
	./scripts/demo.sh

# Fashion-MNIST, MNIST-10k and the scikit-learn digits under data/ (see data/README.md).
data:
	sh scripts/get-data.sh

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR)
	install -m 644 include/fanoise.h $(DESTDIR)$(INCDIR)/fanoise.h
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/libfanoise.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB))
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfanoise.so
	install -m 644 pkgconfig/fanoise.pc $(DESTDIR)$(PCDIR)/fanoise.pc

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/fanoise.h $(DESTDIR)$(LIBDIR)/libfanoise.a \
	    $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libfanoise.so $(DESTDIR)$(PCDIR)/fanoise.pc

clean:
	rm -rf $(BUILD) lib pkgconfig/fanoise.pc

# Bindings and integration checks: the Python binding's tests and packaging, the C++ header, a
# build against an installed copy, and the API reference.
#   make python-check          unittest suite of bindings/python under the system python3 (make ci)
#   make python-install-check  pip installs of bindings/python, offline: a venv and --user (make ci)
#   make cpp-check             include/fanoise.hpp: covers the C API, compiles with g++ and clang++
#                              (C++11 and C++17), examples/cpp built and run (make ci)
#   make install-check         scripts/install-check.sh: install, build consumers with pkg-config and
#                              CMake, run them, uninstall (make check; strict under make ci)
#   make docs                  doxygen HTML in $(BUILD)/docs/html, no warnings, after docs-snippets
#                              (the code of docs/*.md compiles) (make ci)

# The system interpreter: a pyenv python3 earlier on PATH may lack numpy.
PYTHON  ?= /usr/bin/python3
CXX_EX  ?= g++
DOXYGEN ?= doxygen

PY_REFERENCE := $(BUILD)/bindings/c_reference
CPP_PROGRAMS := $(patsubst examples/cpp/%.cpp,$(BUILD)/examples/cpp/%,$(sort $(wildcard examples/cpp/*.cpp)))
# The noise-then-data example with small sizes (noise steps, training samples, epochs): proves it
# runs; the full experiment is `$(PYTHON) examples/python/noise_then_data.py`.
PY_EXAMPLE_SMOKE_ARGS := 200 2000 1

.PHONY: python-check python-install-check cpp-check install-check docs docs-snippets print-version

print-version:
	@echo $(VERSION)

$(BUILD)/bindings $(BUILD)/examples/cpp $(BUILD)/docs:
	@mkdir -p $@

$(PY_REFERENCE): bindings/python/tests/c_reference.c include/fanoise.h $(STLIB) | $(BUILD)/bindings
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STLIB) $(DEP_LIBS)

# One BLAS thread so that the Python and C runs are bit-identical whatever the machine.
# run_tests.py prints "python: P passed, F failed"; the example's smoke run counts as one check.
python-check: lib $(PY_REFERENCE)
	OPENBLAS_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 FANOISE_MAKE_VERSION=$(VERSION) \
	    FANOISE_C_REFERENCE=$(CURDIR)/$(PY_REFERENCE) \
	    $(PYTHON) bindings/python/tests/run_tests.py
	@if OPENBLAS_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 \
	    $(PYTHON) examples/python/noise_then_data.py $(PY_EXAMPLE_SMOKE_ARGS); then \
	    echo "python-example: 1 passed, 0 failed"; \
	else echo "python-example: 0 passed, 1 failed"; exit 1; fi

python-install-check: lib pkgconfig/fanoise.pc
	PYTHON=$(PYTHON) MAKE="$(MAKE)" ./scripts/python-install-check.sh

$(BUILD)/examples/cpp/%: examples/cpp/%.cpp include/fanoise.hpp include/fanoise.h $(STLIB) \
                         | $(BUILD)/examples/cpp
	@$(call msg,CXXLD,$@)
	$(Q)$(CXX_EX) -std=c++17 -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude $< -o $@ $(STLIB) $(DEP_LIBS)

CLANGXX_EX ?= clang++
# The headers under both C++ compilers and standards; every function of fanoise.h is called by
# fanoise.hpp (scripts/hpp-coverage.sh); then the programs, which exit non-zero on a failed check.
cpp-check: $(CPP_PROGRAMS)
	@pass=0; fail=0; \
	for cxx in $(CXX_EX) $(CLANGXX_EX); do for std in c++11 c++17; do for h in fanoise.h fanoise.hpp; do \
	    if $$cxx -std=$$std -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c++ include/$$h; then \
	        pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAIL $$cxx -std=$$std include/$$h"; fi; \
	done; done; done; \
	if sh scripts/hpp-coverage.sh include/fanoise.h include/fanoise.hpp; then pass=$$((pass+1)); \
	else fail=$$((fail+1)); fi; \
	for p in $(CPP_PROGRAMS); do echo "running $$p"; \
	    if OPENBLAS_NUM_THREADS=1 ./$$p; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; \
	done; \
	echo "cpp: $$pass passed, $$fail failed"; test $$fail -eq 0

install-check: all
	MAKE="$(MAKE)" CC="$(CC)" ./scripts/install-check.sh

# The narrative pages' code must compile: every ```c block is a whole translation unit (linked
# when it has main), every ```python block must parse.
DOC_PAGES   := docs/getting-started.md docs/concepts.md
SNIPPET_DIR := $(BUILD)/docs/snippets

docs-snippets: $(STLIB)
	@rm -rf $(SNIPPET_DIR) && mkdir -p $(SNIPPET_DIR)
	@for f in $(DOC_PAGES); do \
	    awk -v out=$(SNIPPET_DIR)/$$(basename $$f .md) \
	        '/^```(c|python)$$/ { n++; lang = substr($$0, 4); file = out "_" n (lang == "c" ? ".c" : ".py"); inside = 1; next } \
	         /^```/ { inside = 0 } inside { print > file }' $$f; \
	done
	@n=0; for s in $(SNIPPET_DIR)/*.c; do \
	    if grep -q 'int main' $$s; then \
	        $(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude $$s -o $${s%.c} $(STLIB) $(DEP_LIBS) || exit 1; \
	    else \
	        $(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -c $$s -o $${s%.c}.o || exit 1; \
	    fi; n=$$((n+1)); \
	done; \
	for s in $(SNIPPET_DIR)/*.py; do \
	    $(PYTHON) -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' $$s || exit 1; \
	    n=$$((n+1)); \
	done; echo "docs: $$n code blocks of $(DOC_PAGES) compile"

docs: docs-snippets | $(BUILD)/docs
	FANOISE_DOCS_DIR=$(BUILD)/docs FANOISE_VERSION=$(VERSION) $(DOXYGEN) docs/Doxyfile
	@if [ -s $(BUILD)/docs/warnings.log ]; then \
	    echo "doxygen warnings (see $(BUILD)/docs/warnings.log):"; cat $(BUILD)/docs/warnings.log; \
	    exit 1; fi
	@echo "docs: $(BUILD)/docs/html/index.html, no warnings"

CHECK_TARGETS += install-check
CI_TARGETS += python-check python-install-check cpp-check docs

# mk/ci.mk - stages of `make ci` that belong to no single feature area.
#   make clang-build   the library, the tool and every test built by clang (into $(BUILD)/clang,
#                      nothing shared with the default build) and run: the same suite under the
#                      other compiler, with its own probe of the optional flags

CLANG_BUILD_CC ?= clang

.PHONY: clang-build

clang-build:
	$(MAKE) CC=$(CLANG_BUILD_CC) BUILD=$(BUILD)/clang LIBOUT=$(BUILD)/clang/lib run-tests

CI_TARGETS += clang-build

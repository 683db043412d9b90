# mk/codegen.mk - properties of the compiled code that no test can observe.
#   make codegen-check   the batch gather's cache prefetches are in the object code
#
# A prefetch is a hint: dropping it changes no result, so no test fails when the compiler drops
# it. GCC 12 did, silently, for as long as the gather chose between two prefetch localities in
# one function (docs/performance.md, "How it works"); the loop that asks for the next batch's rows
# and labels is worth about 11% of a 784-100-10 step. On x86-64 the object file must hold a
# prefetcht0.

.PHONY: codegen-check

codegen-check: $(STLIB)
	@if [ "$$(uname -m)" != x86_64 ]; then \
	    echo "codegen-check: not an x86-64 build, nothing to check"; exit 0; fi; \
	n=$$(objdump -d --no-show-raw-insn $(BUILD)/obj/dataset.o | grep -c 'prefetcht0'); \
	if [ "$$n" -lt 1 ]; then \
	    echo "codegen-check: no prefetcht0 in $(BUILD)/obj/dataset.o: the compiler dropped the"; \
	    echo "batch gather's prefetch of the next batch (fan__dataset_prefetch)"; exit 1; fi; \
	echo "codegen-check: $$n prefetcht0 in the batch gather (src/dataset.c)"
CHECK_TARGETS += codegen-check

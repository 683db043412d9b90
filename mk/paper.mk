# mk/paper.mk - the paper's experiments (examples/paper/), their figures and the demo.
#   make paper          builds the six programs into build/paper/
#   make demo           (main Makefile) builds them too, then runs scripts/demo.sh
#   make paper-results  runs every experiment with its defaults into out/paper/ (hours; one at a
#                       time, so it can share a two-core machine)
#   make rules-results  the learning-rules study (examples/paper/rules.c) into out/paper/rules/,
#                       then its figure (about 15 minutes on two cores; docs/rules.md)
#   make figures        turns out/paper/*/ CSV into docs/figures/*.png with gnuplot
#                       (PAPER_OUT=dir and FIG_DIR=dir choose other places)

PAPER_PROGS := noise_alignment fast_learning order_effect generalization ood meta_loss rules
PAPER_BINS  := $(addprefix $(BUILD)/paper/,$(PAPER_PROGS))
PAPER_KIT   := examples/paper/expkit.c examples/paper/expkit_data.c examples/paper/stats.c
PAPER_HDRS  := examples/paper/expkit.h examples/paper/stats.h include/fanoise.h
PAPER_OUT   ?= out/paper
FIG_DIR     ?= docs/figures

.PHONY: paper paper-check paper-results rules-results figures

$(BUILD)/paper:
	@mkdir -p $@

# The programs use only the public header; the kit is compiled into each (a few hundred lines).
$(BUILD)/paper/%: examples/paper/%.c $(PAPER_KIT) $(PAPER_HDRS) $(STLIB) | $(BUILD)/paper
	@$(call msg,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Iexamples/paper $< $(PAPER_KIT) -o $@ $(STLIB) $(DEP_LIBS)

paper: $(PAPER_BINS)

# The statistics tests link the stats code of the programs (this explicit rule overrides the
# generic tests pattern rule, which would not).
$(BUILD)/tests/test_stats: tests/test_stats.c examples/paper/stats.c examples/paper/stats.h \
                           $(TESTUTIL) tests/testutil.h $(STLIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Isrc -Itests -Iexamples/paper $< examples/paper/stats.c $(TESTUTIL) \
	    -o $@ $(STLIB) $(TEST_LIBS) $(DEP_LIBS)

# `make check` builds the programs (running them takes minutes to hours: see paper-results).
paper-check: $(PAPER_BINS)
	@echo "paper: built $(words $(PAPER_BINS)) experiment programs in $(BUILD)/paper"
CHECK_TARGETS += paper-check

demo: paper

paper-results: $(PAPER_BINS)
	./examples/paper/run_all.sh $(PAPER_OUT)

figures:
	./scripts/figures/make-figures.sh $(PAPER_OUT) $(FIG_DIR)

rules-results: $(BUILD)/paper/rules
	./examples/paper/run_all.sh $(PAPER_OUT) rules
	./scripts/figures/make-figures.sh $(PAPER_OUT) $(FIG_DIR)

# `make bench`: the gateway next to nginx and HAProxy on this machine, see
# bench/README.md. Included from the top-level Makefile, so paths are
# relative to the repository root and $(WARN), $(DEFS) are the gateway's.
#
#   make bench                        every scenario
#   make bench SCENARIO=throughput    one (or a quoted list) of:
#                                     throughput concurrency large-body cpu
#                                     sse forwarded
#   make bench BENCH_REV=HEAD         measure a committed revision, built
#                                     apart in bench/work/src, instead of
#                                     the work tree (which others may be
#                                     editing, or have left not building)
#
# Results go to bench/results/latest.md; everything else a run writes stays
# under bench/work/ (git-ignored).

BENCH_BIN := bench/work/bin
BENCH_SRC := bench/work/src

.PHONY: bench bench-deps bench-gateway bench-clean

bench: bench-deps bench-gateway $(BENCH_BIN)/slowup $(BENCH_BIN)/sseload
	@SCENARIO="$(SCENARIO)" BENCH_REV="$(BENCH_REV)" \
		BENCH_GATEWAY="$(if $(BENCH_REV),$(BENCH_SRC)/build/gateway,$(BUILD)/gateway)" \
		bench/run.sh

# The gateway is built the normal, optimized way (never the sanitizer build,
# whatever SAN says on the command line) before anything is measured, in
# $(BUILD) (build/ unless the command line names another).
ifeq ($(BENCH_REV),)
bench-gateway:
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN= all
else
bench-gateway:
	@rm -rf $(BENCH_SRC) && mkdir -p $(BENCH_SRC)
	@git archive --format=tar "$(BENCH_REV)" | tar -x -C $(BENCH_SRC)
	@$(MAKE) --no-print-directory -C $(BENCH_SRC) BUILD=build SAN= all
endif

# The gateway's build dependencies, then the bench's own tools.
bench-deps:
	@./.ci/deps
	@bench/deps.sh

$(BENCH_BIN)/slowup $(BENCH_BIN)/sseload: $(BENCH_BIN)/%: bench/%.c
	@mkdir -p $(BENCH_BIN)
	$(CC) $(DEFS) $(WARN) -O2 -g -o $@ $< $$(pkg-config --cflags --libs libevent)

bench-clean:
	rm -rf bench/work

# `make fuzz`: every libFuzzer target in tests/fuzz/ (fuzz_*.c), built with
# clang under AddressSanitizer and UndefinedBehaviorSanitizer, each run for
# FUZZ_SECONDS. Included from the top-level Makefile, so paths are relative
# to the repository root and $(DEFS), $(WARN), $(PKG_*) are the gateway's.
#
#   make fuzz                                  every target, 60 s each
#   make fuzz FUZZ_SECONDS=20                  what .ci/run does
#   make fuzz FUZZ_TARGETS="create domain"     some targets only
#   make fuzz-regress                          only replay the checked-in corpora
#
# Each target starts from its seeds in the repository: tests/fuzz/corpus/<t>/
# (including every input that once found a bug, named regress-*) and the unit
# tests' case files listed in FUZZ_SEEDS_<t>. What it discovers goes to
# build/fuzz/corpus/<t>/ (kept between runs, never committed); a crash, leak or
# broken invariant stops the run, leaves the input in build/fuzz/artifacts/
# and fails make. To reproduce one: build/fuzz/fuzz_<t> <artifact>.
# Keep a fixed bug's input as tests/fuzz/corpus/<t>/regress-<what>.

FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -g -O1 $(DEFS) $(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
# The gateway's modules, instrumented for coverage; main.c stays out.
FUZZ_OBJ     := $(patsubst gateway/%.c,$(FUZZ_DIR)/obj/%.o,$(filter-out gateway/main.c,$(SRC)))
FUZZ_HELPERS := tests/fuzz/invariant.c tests/fuzz/invariant.h

# Seeds beyond tests/fuzz/corpus/<t>/: the unit tests' case files.
FUZZ_SEEDS_create := tests/data/schema tests/data/jsondoc
FUZZ_SEEDS_jsondoc := tests/data/jsondoc tests/data/adversarial/json
FUZZ_SEEDS_jsonspool := tests/data/jsondoc tests/data/adversarial/json
FUZZ_SEEDS_policy := tests/data/policy/load
FUZZ_SEEDS_config := tests/data/config
FUZZ_SEEDS_httpmsg := tests/data/httpmsg
FUZZ_SEEDS_tools := tests/data/policy/tools
FUZZ_SEEDS_sse := tests/data/sse

# libFuzzer's options for every run. -timeout is per input and is a budget:
# every stage is linear in its input (README, Hardening), so an input that
# takes more than 2 s under ASan is a finding, not bad luck. The largest
# input allowed (FUZZ_MAX_LEN_<t> below) runs through fuzz_create's five
# policies in well under a second.
FUZZ_FLAGS ?= -timeout=2 -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1

# Where work could grow with the square of a list (domains against
# patterns, secrets against domains, an answer's domains against those
# forwarded), inputs must be long enough for it to show: libFuzzer's
# default max_len (4 KiB, or the largest seed) holds a few hundred domains.
# The scale-* seeds start those targets at that size.
FUZZ_MAX_LEN_create := 262144
FUZZ_MAX_LEN_check := 262144
FUZZ_MAX_LEN_tools := 262144
# A request target may be as long as a head (limits.max_header_bytes'
# default), and its query is scanned item by item for a twin's pair.
FUZZ_MAX_LEN_target := 16384

.PHONY: fuzz fuzz-build fuzz-regress fuzz-clean

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# Objects made through a pattern chain are kept, not deleted as intermediate.
.SECONDARY: $(FUZZ_OBJ)

# The gateway's own build (cc, -Werror) is the one that enforces warnings;
# clang reads a few differently (a "fall through" comment), so here they are
# shown and not fatal.
$(FUZZ_DIR)/obj/%.o: gateway/%.c | $(FUZZ_DIR)/obj
	@echo "  FUZZCC  $<"
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter-out -Werror,$(WARN)) -Wno-implicit-fallthrough \
		-Igateway -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

# An archive, so each target links only the modules it reaches.
$(FUZZ_DIR)/libgateway.a: $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libgateway.a $(FUZZ_HELPERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer -Igateway -Itests/fuzz -o $@ $< \
		tests/fuzz/invariant.c $(FUZZ_DIR)/libgateway.a $(PKG_LIBS) -lm

$(FUZZ_DIR)/obj:
	mkdir -p $@ $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs

# One target: its repository corpora, then FUZZ_SECONDS of new inputs. The
# log goes to build/fuzz/logs/<t>.log; its tail is shown either way.
define fuzz_run
	mkdir -p $(FUZZ_DIR)/corpus/$(1); \
	dict=; [ -f tests/fuzz/$(1).dict ] && dict=-dict=tests/fuzz/$(1).dict; \
	echo "== fuzz_$(1): $(2)"; \
	if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	   $(FUZZ_DIR)/fuzz_$(1) $(FUZZ_FLAGS) $(if $(FUZZ_MAX_LEN_$(1)),-max_len=$(FUZZ_MAX_LEN_$(1))) \
	   $$dict $(3) </dev/null \
	   -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)- \
	   $(FUZZ_DIR)/corpus/$(1) $(wildcard tests/fuzz/corpus/$(1)) $(FUZZ_SEEDS_$(1)) \
	   >$(FUZZ_DIR)/logs/$(1).log 2>&1; then \
		grep -E '^(Done|#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
			$(FUZZ_DIR)/logs/$(1).log | tail -3; \
	else \
		tail -60 $(FUZZ_DIR)/logs/$(1).log; \
		echo "fuzz_$(1) FAILED; input in $(FUZZ_DIR)/artifacts/, log $(FUZZ_DIR)/logs/$(1).log"; \
		failed="$$failed $(1)"; \
	fi;
endef

fuzz: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	@failed=""; \
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SECONDS) s,-max_total_time=$(FUZZ_SECONDS))) \
	n=$(words $(FUZZ_TARGETS)); f=$$(echo $$failed | wc -w); \
	echo "fuzz: $$((n - f)) passed, $$f failed"; \
	[ -z "$$failed" ]

# Replays the checked-in corpora (regressions included) without fuzzing.
fuzz-regress: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	@failed=""; \
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),replay,-runs=0)) \
	n=$(words $(FUZZ_TARGETS)); f=$$(echo $$failed | wc -w); \
	echo "fuzz-regress: $$((n - f)) passed, $$f failed"; \
	[ -z "$$failed" ]

fuzz-clean:
	rm -rf $(FUZZ_DIR)

-include $(FUZZ_OBJ:.o=.d)

# `make lint`: the layer check, then cppcheck and clang-tidy over gateway/,
# with the checked-in configuration (tests/lint/cppcheck.supp, .clang-tidy,
# and tests/lint/tidy-overrides.txt for single files); any finding fails.
# Included from the top-level Makefile. A false positive is suppressed in
# that configuration, as narrowly as the tool allows and with the reason;
# anything else is fixed in the code.

LINT_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
LINT_DEFS := $(DEFS) $(PKG_CFLAGS)

.PHONY: lint lint-layers lint-cppcheck lint-tidy

lint: lint-layers lint-cppcheck lint-tidy

# Includes go down the layers and never round a cycle (tests/lint/layers.py).
lint-layers:
	@echo "== layers gateway/"
	@python3 tests/lint/layers.py includes

lint-cppcheck:
	@echo "== cppcheck gateway/"
	@cppcheck --std=c11 --enable=warning,performance,portability --inline-suppr \
		--suppress=missingIncludeSystem --suppressions-list=tests/lint/cppcheck.supp \
		--error-exitcode=1 --quiet -Igateway $(filter -D%,$(DEFS)) gateway/
	@echo "cppcheck: no findings"

lint-tidy:
	@echo "== clang-tidy gateway/ ($(LINT_JOBS) at a time)"
	@mkdir -p $(BUILD); ls gateway/*.c gateway/*/*.c | xargs -P $(LINT_JOBS) -I{} tests/lint/tidy.sh {} \
		$(LINT_DEFS) -Igateway 2>&1 | grep -v '^[0-9]* warnings\? generated\.$$' \
		| tee $(BUILD)/clang-tidy.log; \
	if grep -q 'error:' $(BUILD)/clang-tidy.log; then \
		echo "clang-tidy: findings above (also in $(BUILD)/clang-tidy.log)"; exit 1; \
	fi; echo "clang-tidy: no findings"

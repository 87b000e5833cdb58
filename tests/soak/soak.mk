# `make soak`: the real gateway (the optimized build) under a mixed workload
# from several clients for SOAK_SECONDS, then checked whole; see
# tests/soak/soak.c for the workload and what is checked. Included from the
# top-level Makefile.
#
#   make soak                      10 minutes
#   make soak SOAK_SECONDS=60      what .ci/run does
#   make soak SOAK_WORKERS=2       the gateway with two event loops
#
# The report is printed and kept in $(BUILD)/soak-report.txt.

SOAK_SECONDS ?= 600
SOAK_CLIENTS ?= 6
SOAK_RATE    ?= 200
SOAK_WORKERS ?= 1
SOAK_BIN     := $(BUILD)/tests/soak

.PHONY: soak

$(SOAK_BIN): tests/soak/soak.c tests/fuzz/invariant.c tests/fuzz/invariant.h $(HARNESS) \
		$(LIBOBJ) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Igateway -Itests -o $@ tests/soak/soak.c tests/fuzz/invariant.c \
		$(HARNESS) $(LIBOBJ) $(LDLIBS) -lcriterion -lpthread

soak: $(BUILD)/gateway $(STUB_BIN) $(SOAK_BIN)
	GW_BIN=$(BUILD)/gateway GW_STUB=$(STUB_BIN) GW_DATA=tests/data \
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CLIENTS=$(SOAK_CLIENTS) SOAK_RATE=$(SOAK_RATE) \
	SOAK_WORKERS=$(SOAK_WORKERS) \
	SOAK_REPORT=$(BUILD)/soak-report.txt $(SOAK_BIN) --jobs=1

# The gateway's build. `make` builds build/gateway; `make test` runs every
# unit and integration test, then all of them again under AddressSanitizer and
# UndefinedBehaviorSanitizer, and the threaded ones under ThreadSanitizer;
# `make run` installs what is missing, builds and
# serves with gateway.example.json.

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
CFLAGS   ?= -O2 -g
PKGS     := libevent libevent_openssl jansson libcurl openssl hiredis sqlite3
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wundef -Wimplicit-fallthrough \
	-Wcast-qual -Wwrite-strings -Wno-missing-field-initializers
DEFS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DGW_VERSION='"$(VERSION)"'

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ALL_CFLAGS = $(DEFS) $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS     = $(PKG_LIBS) -lm

# The sources, bottom layer first (see "How it is built" in the README).
LAYERS  := lib http policy audit app
SRC     := $(foreach l,$(LAYERS),$(wildcard gateway/$(l)/*.c)) $(wildcard gateway/*.c)
OBJ     := $(SRC:gateway/%.c=$(BUILD)/obj/%.o)
LIBOBJ  := $(filter-out $(BUILD)/obj/main.o,$(OBJ))
HARNESS := $(BUILD)/tests/harness.o

UNIT_SRC := $(wildcard tests/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
IT_SRC   := $(wildcard tests/it_*.c)
IT_BIN   := $(IT_SRC:tests/%.c=$(BUILD)/tests/%)
STUB_BIN := $(BUILD)/tests/upstream_stub
# Runs one stage once, for test_scaling to count under callgrind.
PROBE_BIN := $(BUILD)/tests/scale_probe

.PHONY: all deps run test test-run map-check spec-check policy-check unit it sanitize tsan clean format format-check install certs

all: $(BUILD)/gateway

$(BUILD)/gateway: $(OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: gateway/%.c | $(BUILD)/obj
	@echo "  CC  $<"
	@mkdir -p $(dir $@)
	@$(CC) $(ALL_CFLAGS) -Igateway -c -o $@ $<

$(BUILD)/tests/test_%: tests/test_%.c $(LIBOBJ) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Igateway -o $@ $< $(LIBOBJ) $(LDLIBS) -lcriterion

# The integration harness is compiled once and linked into every it_*.
$(HARNESS): tests/harness.c tests/harness.h | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Igateway -c -o $@ $<

$(BUILD)/tests/it_%: tests/it_%.c tests/harness.h $(HARNESS) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Igateway -o $@ $< $(HARNESS) $(LDLIBS) -lcriterion

$(STUB_BIN): tests/stub/upstream.c | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

$(PROBE_BIN): tests/scale_probe.c $(LIBOBJ) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Igateway -o $@ $< $(LIBOBJ) $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# Installs the build and test dependencies that are missing (Debian).
deps:
	@./.ci/deps

run: deps
	$(MAKE) all
	./$(BUILD)/gateway --config gateway.example.json

# Unit tests, the deployment as shipped (tests/deploy/deploy.mk), then
# integration tests against the real binary, first as built and then under
# ASan+UBSan in build/san.
test: deps
	$(MAKE) map-check
	$(MAKE) spec-check
	$(MAKE) deploy-check
	$(MAKE) policy-check
	$(MAKE) test-run
	$(MAKE) sanitize
	$(MAKE) tsan

# The shipped policies' own cases (policies/tests), each passing, and
# between them exercising nine rules in ten (observe-only's count limits
# are set too high to be worth a case); the default policy every rule.
policy-check: $(BUILD)/gateway
	./$(BUILD)/gateway policy test --threshold 90 policies/tests/*.cases.json
	./$(BUILD)/gateway policy test --threshold 100 policies/tests/default.cases.json

# The README's map of the sources ("How it is built") names every module
# under gateway/ and none that is gone (tests/lint/layers.py).
map-check:
	@python3 tests/lint/layers.py readme

# GW_SANITIZED=1 tells tests that measure memory that a sanitizer's own
# memory (ASan's quarantine here, TSan's shadow in tsan) is in the numbers.
sanitize:
	GW_SANITIZED=1 $(MAKE) BUILD=build/san SAN=1 CFLAGS='-O1 -g' test-run

# The tests whose gateway runs several threads (workers, the audit sync
# thread, the checkpoint shipping thread, the span exporting thread, the
# identity provider's keys the workers share), against a ThreadSanitizer
# build of it: a data race fails them.
TSAN_TESTS := it_workers it_lifecycle it_tenants it_audit it_tlog it_stream it_telemetry it_jwt
tsan: $(STUB_BIN) $(TSAN_TESTS:%=$(BUILD)/tests/%)
	$(MAKE) BUILD=build/tsan CFLAGS='-O1 -g -fsanitize=thread' build/tsan/gateway
	@set -e; for t in $(TSAN_TESTS); do \
		echo "== $$t (ThreadSanitizer)"; \
		GW_SANITIZED=1 GW_BIN=build/tsan/gateway GW_STUB=$(STUB_BIN) GW_DATA=tests/data \
		TSAN_OPTIONS=halt_on_error=1 $(BUILD)/tests/$$t --jobs=2; \
	done

test-run: $(BUILD)/gateway $(UNIT_BIN) $(IT_BIN) $(STUB_BIN) $(PROBE_BIN)
	@set -e; for t in $(UNIT_BIN) $(IT_BIN); do \
		echo "== $$t"; \
		GW_BIN=$(BUILD)/gateway GW_STUB=$(STUB_BIN) GW_DATA=tests/data GW_PROBE=$(PROBE_BIN) \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$$t --jobs=2; \
	done

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do $$t; done

format:
	clang-format -i gateway/*.[ch] gateway/*/*.[ch] tests/*.[ch] tests/stub/*.c

format-check:
	clang-format --dry-run -Werror gateway/*.[ch] gateway/*/*.[ch] tests/*.[ch] tests/stub/*.c

# The binary (stripped), the default config (deploy/gateway.json) and the
# policies under PREFIX, the README, and a systemd unit where systemd looks
# for it: /etc/systemd/system (the administrator's units), or
# /usr/lib/systemd/system when PREFIX is /usr (a distribution's package);
# SYSTEMD_UNIT_DIR overrides either. The Dockerfile runs it with
# PREFIX=/opt/gateway. A config or policy already installed is kept.
# DESTDIR is honoured. STRIP= installs the binary with its symbols and
# debug information; STRIP=<tool> strips with another tool (a cross strip).
STRIP ?= strip
SYSTEMD_UNIT_DIR ?= $(if $(filter /usr /usr/,$(PREFIX)),/usr/lib/systemd/system,/etc/systemd/system)

install: $(BUILD)/gateway
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/gateway/policies/examples \
		$(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(PREFIX)/share/doc/gateway
	install -m 0755 $(BUILD)/gateway $(DESTDIR)$(PREFIX)/bin/gateway
	$(if $(STRIP),$(STRIP) $(DESTDIR)$(PREFIX)/bin/gateway)
	test -e $(DESTDIR)$(PREFIX)/etc/gateway/gateway.json || \
		install -m 0644 deploy/gateway.json $(DESTDIR)$(PREFIX)/etc/gateway/gateway.json
	for f in policies/*.json policies/examples/*.json; do \
		test -e $(DESTDIR)$(PREFIX)/etc/gateway/$$f || \
			install -m 0644 $$f $(DESTDIR)$(PREFIX)/etc/gateway/$$f || exit 1; \
	done
	sed 's|@PREFIX@|$(PREFIX)|g' deploy/systemd/gateway.service \
		>$(DESTDIR)$(SYSTEMD_UNIT_DIR)/gateway.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/gateway.service
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/gateway/README.md

# A development CA, server and client certificate in certs/ (keys git-ignored).
certs:
	./certs/make-dev-certs.sh certs

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(HARNESS:.o=.d)

# Targets kept next to what they drive.
-include tests/conformance/conformance.mk
-include bench/bench.mk
-include tests/fuzz/fuzz.mk
-include tests/soak/soak.mk
-include tests/lint/lint.mk
-include tests/spec/spec.mk
-include tests/deploy/deploy.mk

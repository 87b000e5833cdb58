# `make conformance`: the official openai Node SDK, pinned in
# tests/conformance/package-lock.json, calls every Containers method and a
# sample of the rest of the API through build/gateway, which forwards to a
# Prism mock generated from the upstream's whole spec. Prism validates every
# request it gets against that spec, so a call passes only if the gateway
# forwarded something the real API would accept. The Responses calls Prism
# cannot answer go through a second gateway to the stand-in upstream
# (build/tests/upstream_stub). Needs Node and npm; installs into
# tests/conformance/node_modules.
#
#   make conformance                       # the spec's copy in this folder
#   make conformance SPEC=/path/to/spec    # another copy of the spec
#
# openapi.yaml here is the upstream's whole spec exactly as shared with the
# team (../shared/spec/), kept in the repository so a fresh clone can run
# this anywhere; containers.openapi.yaml is the Containers contract cut
# from it (SPEC=tests/conformance/containers.openapi.yaml runs the
# Containers checks alone, faster; the others then fail).

SPEC ?= tests/conformance/openapi.yaml
CONFORMANCE_DIR := tests/conformance

.PHONY: conformance

conformance: $(BUILD)/gateway $(BUILD)/tests/upstream_stub $(CONFORMANCE_DIR)/node_modules/.package-lock.json
	$(CONFORMANCE_DIR)/run.sh $(BUILD)/gateway $(SPEC) $(BUILD)/tests/upstream_stub

# npm ci wipes and reinstalls node_modules from the lockfile; npm writes
# node_modules/.package-lock.json when it is done, so it marks an install
# that finished and is redone only when the lockfile changes.
$(CONFORMANCE_DIR)/node_modules/.package-lock.json: $(CONFORMANCE_DIR)/package.json $(CONFORMANCE_DIR)/package-lock.json
	cd $(CONFORMANCE_DIR) && npm ci --no-audit --no-fund
	touch $@

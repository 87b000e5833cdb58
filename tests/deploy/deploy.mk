# `make deploy-check` (part of `make test`): the Kubernetes manifests as
# rendered by `kubectl kustomize`, `make install` into a temporary DESTDIR,
# the shipped configs and the README's paths (tests/deploy/check.sh).
# Needs kubectl and python3-yaml (.ci/deps installs them); no cluster.
# Included from the top-level Makefile.

.PHONY: deploy-check

deploy-check: $(BUILD)/gateway
	MAKE="$(MAKE)" tests/deploy/check.sh $(BUILD)

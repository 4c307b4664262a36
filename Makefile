# forgelab: `make demo` plays the handover demo; `make test` runs every test.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
STATE_DIR ?= $(or $(FORGELAB_STATE_DIR),/var/lib/forgelab)
FORGELAB := ./bin/forgelab --state-dir $(STATE_DIR)

.PHONY: setup build test unit image demo quickstart demo-down bench transport transport-bench clean ui-vendor

setup:
	.ci/setup

# forgelab, and next to it forgelab-guestinit: the static program the
# debian-12 image runs at boot to apply a VM's seed (copied in at image build).
build:
	$(GO) build -buildvcs=auto -o bin/forgelab ./cmd/forgelab
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o bin/forgelab-guestinit ./images/guestinit/forgelab-guestinit

# Unit tests only: no VMs, no root needed.
unit:
	$(GO) vet ./...
	$(GO) test -short ./...

# Everything, VM and network tests included. Tests that boot VMs share one
# image in $(STATE_DIR)/images (built on first use).
test: setup build
	$(GO) vet ./...
	.ci/check-tools
	FORGELAB_STATE_DIR=$(STATE_DIR) FORGELAB_BIN=$(CURDIR)/bin/forgelab FORGELAB_GUESTINIT=$(CURDIR)/bin/forgelab-guestinit \
	  .ci/gotest

image: setup build
	$(FORGELAB) image build debian-12

# The main job: the handover demo (issue 10). Both variants of the network
# under test play the same movement one after the other (create, run,
# destroy): babeld (adaptive) and static routes (plain IP). Then `forgelab
# compare` judges the two run folders: how much of its best delivery,
# goodput and latency each kept under each loss on ab and in each phase,
# when Alice's route moved, and an HTML report with plots
# (bin/demo-compare.html). Each run's folder stays: `forgelab runs ls`.
HANDOVER := examples/handover/bin/handover
demo: setup build
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o $(HANDOVER) ./examples/handover
	@rm -f bin/demo-runs
	@for v in babeld static; do \
	  echo "== handover, variant $$v"; \
	  $(FORGELAB) destroy handover-$$v 2>/dev/null; \
	  $(FORGELAB) create examples/handover-$$v.toml || exit 1; \
	  $(FORGELAB) run handover-$$v examples/handover.toml --variant $$v >>bin/demo-runs; rc=$$?; \
	  $(FORGELAB) destroy handover-$$v; \
	  [ $$rc = 0 ] || exit $$rc; \
	done
	@echo; $(FORGELAB) compare --html bin/demo-compare.html $$(cat bin/demo-runs)
	@echo; echo "report with plots: bin/demo-compare.html"

# The quickstart example (examples/quickstart.toml): a lab left running.
quickstart: setup build
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o examples/quickstart/bin/demo ./examples/quickstart
	$(FORGELAB) create examples/quickstart.toml
	$(FORGELAB) exec quickstart a -- ping -c 3 -q b.ab
	$(FORGELAB) exec quickstart a -- 'ip -brief address'
	$(FORGELAB) workload --wait quickstart
	@echo "quickstart is running. Try: $(FORGELAB) ssh quickstart a   |   make demo-down"

# The bench example (examples/transport-bench.toml, docs/bench.md): the
# transport program, then every mode at every point, 5 runs each. The lab
# stays up for the next bench (`make demo-down` removes it).
TRANSPORT := examples/transport/bin/transport
transport:
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o $(TRANSPORT) ./examples/transport

transport-bench: setup build transport
	$(FORGELAB) bench examples/transport-bench.toml --runs 5 --against-reference

# Removes what `make demo` or `make quickstart` left (after a Ctrl-C).
demo-down: build
	-$(FORGELAB) destroy handover-babeld handover-static quickstart transport-bench

bench: setup build
	bench/boot.sh

# Refresh the web UI's JavaScript libraries from the npm registry (pinned in
# telemetry/ui/package-lock.json); the result is committed, so builds need no npm.
ui-vendor:
	telemetry/ui/vendor.sh

clean:
	rm -rf bin examples/quickstart/bin examples/handover/bin examples/transport/bin

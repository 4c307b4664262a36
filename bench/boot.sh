#!/usr/bin/env bash
# Boot benchmark: 1 and 4 VMs of debian-12 next to debian-12-cloud-init (stock cloud-init), from `forgelab create` to all-SSH-ready, the
# CPU the boots cost, and destroy time. Prints a table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
make build
bin/forgelab image build debian-12
bin/forgelab image build debian-12-cloud-init
go run ./bench/boot -bin bin/forgelab -vms "${VMS:-1,4}" -runs "${RUNS:-1}"

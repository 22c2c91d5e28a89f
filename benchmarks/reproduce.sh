#!/usr/bin/env bash
# Reproduce BENCHMARKS.md's figures on this machine: the full bench, the epoch-start stall, the Monitor overhead, the input diagnosis.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
host=$(hostname -s 2>/dev/null || echo host)
.venv/bin/redline bench --json "benchmarks/results/bench-$host.json" | tee "benchmarks/results/bench-$host.txt"
.venv/bin/python benchmarks/epoch_stall.py --repeats 3 --epochs 8 --json "benchmarks/results/stall-$host.json" | tee "benchmarks/results/stall-$host.txt"
.venv/bin/python benchmarks/monitor_overhead.py --repeats 3 --json "benchmarks/results/monitor-overhead-$host.json" | tee "benchmarks/results/monitor-overhead-$host.txt"
for p in naive redline; do .venv/bin/redline diagnose --workload input --pipeline $p --seconds 2 | tee "benchmarks/results/diagnose-input-$p-$host.txt"; done

#!/usr/bin/env bash
# Reproduce BENCHMARKS.md's figures on this machine: the full bench and the epoch-start stall.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
host=$(hostname -s 2>/dev/null || echo host)
.venv/bin/redline bench --json "benchmarks/results/bench-$host.json" | tee "benchmarks/results/bench-$host.txt"
.venv/bin/python benchmarks/epoch_stall.py --repeats 3 --epochs 8 --json "benchmarks/results/stall-$host.json" | tee "benchmarks/results/stall-$host.txt"

#!/usr/bin/env bash
# Reproduce BENCHMARKS.md's figures on this machine: the full bench, the epoch-start stall, the Monitor overhead, the input diagnosis, tune, launch and the data service.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
host=$(hostname -s 2>/dev/null || echo host)
.venv/bin/redline bench --json "benchmarks/results/bench-$host.json" | tee "benchmarks/results/bench-$host.txt"
.venv/bin/python benchmarks/epoch_stall.py --repeats 3 --epochs 8 --json "benchmarks/results/stall-$host.json" | tee "benchmarks/results/stall-$host.txt"
.venv/bin/python benchmarks/monitor_overhead.py --repeats 3 --json "benchmarks/results/monitor-overhead-$host.json" | tee "benchmarks/results/monitor-overhead-$host.txt"
for p in naive redline; do .venv/bin/redline diagnose --workload input --pipeline $p --seconds 2 | tee "benchmarks/results/diagnose-input-$p-$host.txt"; done
# redline tune then run on every script in benchmarks/scripts/ (66: about 6.5 hours on 2 cores, tunes of up to 180 s and
# 3 rounds of 4 runs each), the grid on two of them (about 30 min), scale-out, the tf.data service
.venv/bin/python benchmarks/tune_scripts.py --repeats 3 --json "benchmarks/results/tune-scripts-$host.json"
.venv/bin/python benchmarks/tune_grid.py --repeats 3 --confirm 5 --json "benchmarks/results/tune-grid-$host.json" \
    benchmarks/scripts/tabular_mlp.py benchmarks/scripts/transformer_block.py
.venv/bin/python benchmarks/launch_scaling.py --repeats 3 --json "benchmarks/results/launch-scaling-$host.json"
.venv/bin/python benchmarks/data_service.py --repeats 3 --json "benchmarks/results/data-service-$host.json"

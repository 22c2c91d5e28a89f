"""Benchmarking: redline bench's machinery (fresh-process runs of the built-in workloads, in-run tuning,
peak matmul, utilisation windows) and `redline diagnose --workload`. It reads results; it never reconfigures a plan
beyond what each fresh run applies to itself."""

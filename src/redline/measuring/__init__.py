"""Measuring: run workloads and micro-benchmarks, and read results. It never reconfigures a plan."""

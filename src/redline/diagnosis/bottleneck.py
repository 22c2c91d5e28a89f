"""Where the time of a training step goes, and what to change. Pure: measurements in, a Diagnosis out.

The step of the real run is split three ways from three throughputs measured
at the same batch size B (see redline.diagnosis.probe):

- model alone on a cached batch at B and at 2B: t(B) = F + C, t(2B) = F + 2C,
  so the fixed per-step cost is F = 2 t(B) - t(2B) (clamped to [0, t(B)]) and
  the compute that grows with the batch is C = t(B) - F;
- the real run's step T; the time it waits for input is W = T - t(B).

Shares of T: input = W / T, overhead = F / T, compute = C / T. The run is
"<largest share>-bound". The input share is graded on its own as XProf does:
>= 20% highly input-bound, >= 5% moderately.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from .config import ERROR, INFO, WARNING, Finding

#: input share of the step (XProf's grades).
INPUT_HIGH, INPUT_MODERATE = 0.20, 0.05
#: fixed per-step share of the step above which per-step overhead is a finding.
OVERHEAD_HIGH = 0.50
#: a process keeping at most this many cores busy on a machine with 2+ usable CPUs is single-threaded.
SINGLE_THREAD_CORES = 1.3
#: mean GPU utilisation below these: low (warning), idle (error).
GPU_LOW_PCT, GPU_IDLE_PCT = 50.0, 10.0
#: GPU memory used above this fraction of the total: nearly full.
GPU_MEM_FULL = 0.90
#: median runnable threads above this multiple of usable CPUs (and at least 2 above): oversubscribed.
#: (Input threads beside the model's make 2x on purpose; more than that only takes turns.)
OVERSUBSCRIBED = 2.0
#: an input pipeline that keeps this share of the usable CPUs busy on its own has no cores left to gain.
CPU_SATURATED = 0.8
#: an epoch start slower than a median step by this much is a stall worth fixing.
STALL_S = 0.1
#: steps shorter than this with steps_per_execution=1 pay Python dispatch each step.
SHORT_STEP_S = 0.02

THRESHOLDS = {
    "input_highly_bound_share": INPUT_HIGH, "input_moderately_bound_share": INPUT_MODERATE,
    "overhead_share": OVERHEAD_HIGH, "single_thread_cores": SINGLE_THREAD_CORES,
    "gpu_low_util_pct": GPU_LOW_PCT, "gpu_idle_util_pct": GPU_IDLE_PCT, "gpu_memory_full_fraction": GPU_MEM_FULL,
    "oversubscribed_runnable_per_cpu": OVERSUBSCRIBED, "input_cpu_saturated_share": CPU_SATURATED,
    "epoch_stall_s": STALL_S, "short_step_s": SHORT_STEP_S,
}


@dataclass(frozen=True)
class Breakdown:
    """Seconds per step of the real run, split three ways."""

    step_s: float
    input_s: float
    overhead_s: float
    compute_s: float

    def shares(self) -> dict:
        return {"input": self.input_s / self.step_s, "overhead": self.overhead_s / self.step_s,
                "compute": self.compute_s / self.step_s}


@dataclass(frozen=True)
class Diagnosis:
    #: "input-bound", "compute-bound", "overhead-bound", or "not measured" (a record without a probe).
    kind: str
    #: "highly input-bound", "moderately input-bound", "not input-bound", or None when not measured.
    input_grade: str | None
    breakdown: Breakdown | None
    probe: dict | None
    findings: tuple = ()
    thresholds: dict = field(default_factory=lambda: dict(THRESHOLDS))
    #: the run record's numbers behind the findings (a RunSummary), where there was a record.
    summary: object = None

    def to_dict(self) -> dict:
        b = self.breakdown
        return {
            "kind": self.kind, "input_grade": self.input_grade,
            "breakdown": None if b is None else {**b.__dict__, "shares": {k: round(v, 4) for k, v in b.shares().items()}},
            "probe": self.probe, "thresholds": self.thresholds,
            "findings": [f.__dict__ for f in self.findings],
        }


def check_probe_args(seconds, repeats) -> None:
    """The probe's timing arguments, checked before anything is measured."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0.2 <= seconds <= 600:
        raise UsageError(f"seconds={seconds!r} is not valid: give the seconds each measurement runs, 0.2 to 600 (default 1.5)")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 20:
        raise UsageError(f"repeats={repeats!r} is not valid: give how often each throughput is measured, 1 to 20 (default 2)")


def breakdown(batch_size: int, model_rate: float, model_2x_rate: float, run_rate: float) -> Breakdown:
    """Split the real run's step; rates are samples/s at batch B (model_2x_rate at 2B)."""
    for name, v in (("batch_size", batch_size), ("model_rate", model_rate), ("model_2x_rate", model_2x_rate), ("run_rate", run_rate)):
        if not v or v <= 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    t1 = batch_size / model_rate
    t2 = 2 * batch_size / model_2x_rate
    fixed = min(max(2 * t1 - t2, 0.0), t1)
    step = max(batch_size / run_rate, t1)  # a real step faster than the model alone is noise: no input wait
    return Breakdown(step_s=step, input_s=step - t1, overhead_s=fixed, compute_s=t1 - fixed)


def classify(b: Breakdown) -> tuple[str, str]:
    shares = b.shares()
    kind = max(shares, key=shares.get) + "-bound"
    s = shares["input"]
    grade = "highly input-bound" if s >= INPUT_HIGH else "moderately input-bound" if s >= INPUT_MODERATE else "not input-bound"
    return kind, grade


# -- fixes, as code ------------------------------------------------------------

#: the ops tf.numpy_function and tf.py_function put in a tf.data map: Python, run under the GIL
PYTHON_OPS = {"PyFunc": "tf.numpy_function", "PyFuncStateless": "tf.numpy_function", "EagerPyFunc": "tf.py_function"}


def _pipeline_fix(adapter: str | None, batch: int | None, python_ops=()) -> str:
    b = batch or "BATCH"
    if adapter == "TFDatasetAdapter" and python_ops:
        calls = " / ".join(sorted({PYTHON_OPS.get(op, op) for op in python_ops}))
        return (f"# the pipeline calls Python ({calls}): that code runs under the GIL, so a parallel map gains only as much\n"
                "# as it releases the GIL (`redline tune train.py` measures a parallel map on this script). Move the work\n"
                "# into TensorFlow ops or Keras preprocessing layers (a rotation: layers.RandomRotation(0.04)), then:\n"
                "ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)\n"
                "# or run the Python work once before training and .cache() its result")
    if adapter == "TFDatasetAdapter":
        return ("ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)   # parallel map, overlap with training\n"
                f"# or build it with redline: ds = redline.data.pipeline((x, y), batch_size={b}, augment=fn); "
                "model.fit(ds, **ds.redline.fit_kwargs())")
    if adapter in ("GeneratorDataAdapter", "PyDatasetAdapter"):
        return ("src = redline.data.generator(gen, output_signature=spec, size=N)   # gen(shard, num_shards): runs in worker processes\n"
                f"ds = redline.data.pipeline(src, batch_size={b}); model.fit(ds, **ds.redline.fit_kwargs())\n"
                "# a keras.utils.PyDataset: PyDataset(workers=N, use_multiprocessing=True)")
    return (f"ds = redline.data.pipeline((x, y), batch_size={b})   # prefetched, no epoch-start stall; augment=fn runs in parallel\n"
            "model.fit(ds, **ds.redline.fit_kwargs())")


def _overhead_fix(batch: int | None) -> str:
    bigger = f"batch_size={2 * batch}" if batch else "a larger batch_size"
    return (f"model.compile(..., steps_per_execution=16)   # several steps per call: dispatch paid once\n"
            f"# or: {bigger} (scale the learning rate), or model.compile(..., jit_compile=True); "
            "`redline run --steps-per-execution 16 train.py` sets it without editing the script")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _rate(x) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def probe_findings(probe: dict, b: Breakdown, usable: int | None, stalls_s: tuple = (), steps: int = 0) -> list[Finding]:
    out = []
    shares = b.shares()
    B, adapter = probe.get("batch_size"), probe.get("data_adapter")
    P, M, R = probe.get("pipeline_samples_per_s"), probe.get("model_samples_per_s"), probe.get("run_samples_per_s")
    pc = probe.get("pipeline_cores_busy")
    s_in = shares["input"]
    if s_in >= INPUT_MODERATE:
        high = s_in >= INPUT_HIGH
        stall_total, wait_total = sum(stalls_s), b.input_s * steps
        saturated = usable and pc is not None and pc >= CPU_SATURATED * usable
        python_ops = probe.get("pipeline_python_ops") or ()
        fix = _pipeline_fix(adapter, B, python_ops)
        if saturated:
            where = (f"the pipeline alone already keeps {pc:.2f} of {usable} usable CPUs busy: "
                     "input and model together need more CPU than this machine has")
            fix = ("# the input is parallel already; make it cheaper or give it more CPUs:\n"
                   "ds = redline.data.pipeline((x, y), batch_size=B, map_fn=decode, augment=fn)   # deterministic work in map_fn is cached once\n"
                   "# per-batch (vectorised) augmentation: batch_map_fn=...; more CPUs for input: tf.data service "
                   "(tf.data.experimental.service) on other machines")
        elif stall_total and wait_total and stall_total >= wait_total / 2:
            where = (f"most of it is the wait at each epoch start ({len(stalls_s)} restarts, {stall_total:.2f} s in all): "
                     "the input is rebuilt every epoch")
        elif P is not None and M and P < M:
            where = "the pipeline alone is slower than the model"
            if probe.get("redline_pipeline"):
                fix = ("# this is a redline.data pipeline already: parallel, prefetched, on its own thread pool; its per-element\n"
                       "# work is what limits it, so more parallelism will not help. Make the work cheaper:\n"
                       "ds = redline.data.pipeline((x, y), batch_size=B, map_fn=decode, batch_map_fn=augment_batch)   "
                       "# map_fn is cached once; batch_map_fn is vectorised per batch\n"
                       "# or give input more CPUs: a tf.data service (tf.data.experimental.service) on other machines")
        else:
            where = "the pipeline alone keeps up, but pipeline and model compete for the same cores"
            if probe.get("redline_pipeline"):
                where += (f" (the redline.data pipeline alone gives {_rate(P)} samples/s against the model's {_rate(M)}: "
                          "the model itself is the limit)")
                fix = ("# the input is not the problem to fix: it keeps up on its own. What is left is CPU shared with the model:\n"
                       "# a cheaper model step (steps_per_execution, a larger batch), more cores, or input on other machines "
                       "(tf.data service)")
        out.append(Finding(
            "input_bound", ERROR if high else WARNING,
            f"{'highly' if high else 'moderately'} input-bound: the model waits for input {_pct(s_in)} of each step; {where}",
            f"input pipeline alone {_rate(P)} samples/s; model alone on a cached batch {_rate(M)} samples/s; "
            f"real run {_rate(R)} samples/s (batch {B}); step {1000 * b.step_s:.1f} ms, of which input wait {1000 * b.input_s:.1f} ms"
            + (f"; the pipeline calls Python ({', '.join(sorted(python_ops))} ops)" if python_ops else ""),
            fix,
        ))
    if usable and usable >= 2 and pc is not None and pc <= SINGLE_THREAD_CORES and s_in >= INPUT_MODERATE and P and M and P < M:
        out.append(Finding(
            "input_single_thread", WARNING,
            f"the input pipeline runs on one thread: {pc:.2f} of {usable} usable cores busy while it runs alone",
            f"process CPU while iterating the pipeline alone: {pc:.2f} cores; data given to fit as {adapter or 'unknown'}",
            _pipeline_fix(adapter, B, probe.get("pipeline_python_ops") or ()) + (
                "\n# a Python generator holds the GIL: only worker processes run it in parallel"
                if adapter in ("GeneratorDataAdapter", "PyDatasetAdapter") else ""),
        ))
    s_ov = shares["overhead"]
    if s_ov >= OVERHEAD_HIGH:
        M2 = probe.get("model_2x_samples_per_s")
        out.append(Finding(
            "dispatch_overhead", WARNING,
            f"per-step overhead dominates: {_pct(s_ov)} of each step does not grow with the batch (dispatch, step set-up, optimizer update)",
            f"model alone: batch {B} {_rate(M)} samples/s, batch {2 * B if B else '2B'} {_rate(M2)} samples/s: "
            f"a fixed {1000 * b.overhead_s:.2f} ms per step against {1000 * b.compute_s:.2f} ms that grows with the batch; "
            f"steps_per_execution={probe.get('steps_per_execution')}, jit_compile={probe.get('jit_compile')}",
            _overhead_fix(B),
        ))
    return out


def run_findings(summary, header: dict, kind: str | None = None) -> list[Finding]:
    """Findings a run record supports by itself: CPU and GPU use, threads, stalls, short steps."""
    out = []
    usable = summary.usable_cpus
    rt = header.get("runtime") or {}
    B = summary.batch_size
    adapter = header.get("data_adapter")
    busy = summary.process_cores_busy
    if usable and usable >= 2 and busy is not None and busy <= SINGLE_THREAD_CORES:
        intra = rt.get("intra_op_threads")
        threads_cause = intra == 1
        out.append(Finding(
            "cores_idle", WARNING,
            f"cores sit idle: the training process kept {busy:.2f} of {usable} usable CPUs busy (median over the run)",
            f"process CPU median {busy:.2f} cores; mean per-core use {', '.join(f'{c:.0f}%' for c in summary.cpu_mean_pct)}; "
            f"intra-op threads {intra if intra is not None else 'n/a'}; data given as {adapter or 'unknown'}",
            ("redline.configure()   # before TensorFlow starts: intra-op threads = usable physical cores" if threads_cause
             else _overhead_fix(B) + "\n# a small step runs mostly in one Python thread: fewer, larger steps keep the cores busy"
             if kind == "overhead-bound"
             else _pipeline_fix(adapter, B) + "\n# single-threaded input (a Python generator under the GIL, a sequential map) leaves cores idle"),
        ))
    if summary.runnable is not None and usable and summary.runnable > OVERSUBSCRIBED * usable and summary.runnable >= usable + 2:
        out.append(Finding(
            "oversubscribed", WARNING,
            f"oversubscribed: a median {summary.runnable:g} threads were runnable on {usable} usable CPUs; they take turns and cache-thrash",
            f"/proc/stat procs_running median {summary.runnable:g} (the sampler excluded); usable CPUs {usable}; "
            f"intra-op {rt.get('intra_op_threads', 'n/a')}, inter-op {rt.get('inter_op_threads', 'n/a')}",
            f"redline.configure()   # intra-op = usable physical cores\n# and OMP_NUM_THREADS={usable}; fewer data workers or other jobs on this machine",
        ))
    for g in summary.gpus:
        util = g["util_mean_pct"]
        if util < GPU_LOW_PCT:
            fix = (_pipeline_fix(adapter, B) if kind == "input-bound" else _overhead_fix(B) if kind == "overhead-bound"
                   else f"# measure where the time goes: redline.diagnose(model, data)\n{_overhead_fix(B)}")
            out.append(Finding(
                "gpu_idle" if util < GPU_IDLE_PCT else "gpu_low_util", ERROR if util < GPU_IDLE_PCT else WARNING,
                f"GPU {g['index']} ({g['name']}) is {'idle' if util < GPU_IDLE_PCT else 'under-used'}: {util:.0f}% mean utilisation",
                f"NVML utilisation mean {util:.0f}% over {len(g['util_series'])} samples" + (f"; the run is {kind}" if kind else ""),
                fix,
            ))
    growth = rt.get("gpu_memory_growth") or []
    for g in summary.gpus:
        if g["mem_max_frac"] >= GPU_MEM_FULL:
            off = g["index"] < len(growth) and not growth[g["index"]]
            out.append(Finding(
                "gpu_memory_full", WARNING,
                f"GPU {g['index']} memory nearly full: {_pct(g['mem_max_frac'])} used at the peak" +
                ("; memory growth is off, so TensorFlow reserved it whether the model needs it or not" if off else ""),
                f"NVML memory used {g['mem_max_bytes'] / 2**30:.1f} of {g['mem_total_bytes'] / 2**30:.1f} GiB",
                ('redline.configure(gpu_memory="growth")   # before TensorFlow starts; or tf.config.experimental.set_memory_growth(gpu, True)'
                 if off else f"a smaller batch than {B}, or mixed precision: redline.configure(precision='auto')"),
            ))
    if growth and not any(growth) and not any(f.code == "gpu_memory_full" for f in out):
        out.append(Finding(
            "gpu_memory_growth_off", INFO,
            "GPU memory growth is off: TensorFlow reserves nearly all GPU memory at start, so nvidia-smi shows it full and no other process can share the GPU",
            f"tf.config.experimental.get_memory_growth: {growth}",
            'redline.configure(gpu_memory="growth")   # before TensorFlow starts',
        ))
    stalls = [s for s in summary.epoch_stalls_s if s > STALL_S]
    if stalls:
        out.append(Finding(
            "epoch_start_stall", WARNING,
            f"{len(stalls)} of {len(summary.epoch_stalls_s)} epochs started late, by up to {max(stalls):.2f} s",
            f"epoch-start stalls beyond a median step: {', '.join(f'{s:.2f}' for s in summary.epoch_stalls_s)} s "
            "(a finite dataset's iterator is rebuilt each epoch and waits on tf.data's autotune thread)",
            _pipeline_fix(adapter, B) + "\n# or ds.repeat() with model.fit(..., steps_per_epoch=N)",
        ))
    spe = header.get("steps_per_execution") or 1
    if kind is None and summary.step_time_s is not None and summary.step_time_s < SHORT_STEP_S and spe == 1:
        out.append(Finding(
            "short_steps", INFO,
            f"steps are short ({1000 * summary.step_time_s:.1f} ms median) and run one per call: per-step dispatch likely matters",
            f"median step {1000 * summary.step_time_s:.2f} ms; steps_per_execution=1; measure it: redline.diagnose(model, data)",
            _overhead_fix(B),
        ))
    return out


def diagnose_measured(probe: dict | None, summary=None, header: dict | None = None) -> Diagnosis:
    """The Diagnosis from the probe's three throughputs (if any) and a run summary (if any)."""
    usable = summary.usable_cpus if summary is not None else None
    if probe is None:
        findings = run_findings(summary, header or {}) if summary is not None else []
        return Diagnosis("not measured", None, None, None, tuple(findings), summary=summary)
    b = breakdown(probe["batch_size"], probe["model_samples_per_s"], probe["model_2x_samples_per_s"], probe["run_samples_per_s"])
    kind, grade = classify(b)
    findings = probe_findings(probe, b, usable or probe.get("usable_cpus"),
                              summary.epoch_stalls_s if summary is not None else (), summary.steps if summary is not None else 0)
    if summary is not None:
        seen = {f.code for f in findings}
        findings += [f for f in run_findings(summary, header or {}, kind)
                     if not (f.code == "cores_idle" and "input_single_thread" in seen)]
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    verdict_code = {"input-bound": "input_bound", "overhead-bound": "dispatch_overhead"}.get(kind)
    findings.sort(key=lambda f: (f.code != verdict_code, order[f.severity]))
    return Diagnosis(kind, grade, b, probe, tuple(findings), summary=summary)


__all__ = ["THRESHOLDS", "Breakdown", "Diagnosis", "breakdown", "classify", "diagnose_measured", "probe_findings", "run_findings"]

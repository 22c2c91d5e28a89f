"""The per-process candidates of tune: the settings that need a process of their own (another backend, oneDNN,
threads, precision), as this machine and the script's own choices admit them, the script as written first."""

from __future__ import annotations

import os

from ..applying.entry import with_args
from ..detection.runtime import missing_packages
from .result import Candidate


def policy_of(res: dict) -> tuple | None:
    """Where a trial saw the script set its own dtype policy, and which (tuning/precision_pin.py), or None."""
    return (res["precision_set_at"], res.get("precision_set")) if res.get("precision_set_at") else None


def script_pins(res: dict) -> dict:
    """process_candidates' keywords from a trial's result: where the script sets its backend, its threads, its dtype
    policy and oneDNN itself."""
    return {"pinned": res.get("pinned_at") if res.get("pinned_backend") else None,
            "threads_at": res.get("threads_set_at"), "policy": policy_of(res),
            "onednn": (res["onednn_set_at"], res.get("onednn_set")) if res.get("onednn_set_at") else None}


def _onednn(snapshot, onednn: tuple | None, environ=os.environ) -> Candidate:
    """The oneDNN candidate: the other value than the one the script runs with. Where the script sets
    TF_ENABLE_ONEDNN_OPTS itself (``onednn``: file:line, value), measured with its line ignored, and where the user's
    environment sets it, measured with the other value: advice either way, with the line to change."""
    tf_on = snapshot.cpu.has("avx512_vnni") or snapshot.cpu.has("avx512_bf16") or snapshot.cpu.has("amx")
    given = onednn[1] if onednn else environ.get("TF_ENABLE_ONEDNN_OPTS")
    word = str(given).strip().lower()
    on = tf_on if given is None or word not in ("0", "1", "true", "false") else word in ("1", "true")
    other = "0" if on else "1"
    name = f"oneDNN {'off' if on else 'on'}"
    why = f"TensorFlow {'enables' if tf_on else 'leaves off'} oneDNN on this CPU by default"
    if given is None:
        return Candidate(name, {"TF_ENABLE_ONEDNN_OPTS": other}, why=why)
    fix = "remove it" if (other == "1") == tf_on else f"set it to {other}"
    if onednn:
        return Candidate(name, {"TF_ENABLE_ONEDNN_OPTS": other}, trial={"force_onednn": True},
                         why=f"{why}; the script's own TF_ENABLE_ONEDNN_OPTS line ignored in the trial",
                         advice=f"the script sets TF_ENABLE_ONEDNN_OPTS={given} itself ({onednn[0]}): {fix} there")
    return Candidate(name, {"TF_ENABLE_ONEDNN_OPTS": other}, trial={"environment": "TF_ENABLE_ONEDNN_OPTS"},
                     why=f"{why}; the environment's value replaced in the trial",
                     advice=f"TF_ENABLE_ONEDNN_OPTS={given} is set in your environment: {fix}")


def process_candidates(snapshot, backend: str, allow, pinned: str | None = None,
                       threads_at: str | None = None, policy: tuple | None = None,
                       onednn: tuple | None = None) -> list[Candidate]:
    """Per-process candidates for this machine, the default (the script as it is) first. ``pinned``: where the script
    sets KERAS_BACKEND itself (file:line); the other backends are then measured against that line, as advice only.
    ``threads_at``: where it sets TensorFlow's thread counts itself (tuning/threads_pin.py); the thread candidates are
    then measured with its line ignored, TensorFlow's own defaults among them, as advice only. ``policy``: (file:line,
    name) where it sets its own dtype policy: the precision candidates, float32 among them, are then measured with
    its line ignored, as advice only (precision_candidates). ``onednn``: (file:line, value) where it sets
    TF_ENABLE_ONEDNN_OPTS itself: the other value is measured with its line ignored, as advice only (_onednn)."""
    usable = snapshot.cpu.usable
    out = [Candidate("as written", why=f"the script as `python script.py` runs it ({backend} backend, runtime defaults)")]
    for other in ("jax", "torch", "tensorflow"):
        if other == backend:
            continue
        if missing_packages(other):
            out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, error=f"{other} is not installed"))
            continue
        if pinned:
            out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, trial={"force_backend": True},
                                 why=f"Keras on {other}, the script's own KERAS_BACKEND line ignored in the trial",
                                 advice=f"the script sets KERAS_BACKEND={backend} itself ({pinned}): change that line to "
                                        f"use {other}"))
            continue
        out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, why=f"Keras on {other}"))
    if backend == "tensorflow":
        out.append(_onednn(snapshot, onednn))
        threads = [Candidate("1 intra-op thread", {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
                             why="one thread per op: less hand-over for dispatch-bound steps")]
        if usable < (snapshot.cpu.logical if isinstance(snapshot.cpu.logical, int) else usable):
            threads.append(Candidate("plan threads", {"TF_NUM_INTRAOP_THREADS": str(snapshot.cpu.usable_physical),
                                                      "TF_NUM_INTEROP_THREADS": str(min(2, usable))},
                                     why="threads sized to the usable cores (quota or affinity below the machine's count)"))
        if threads_at:  # the script's own counts win over the environment: measured with its line ignored, as advice
            threads.insert(0, Candidate("TensorFlow's default threads", why="the thread pools TensorFlow sizes itself"))
            for c in threads:
                c.trial, c.why = {"force_threads": True}, f"{c.why}, the script's own thread line ignored in the trial"
                c.advice = (f"the script sets its thread counts itself ({threads_at}): "
                            + ("remove that line" if not c.env else
                               f"set intra-op {c.env['TF_NUM_INTRAOP_THREADS']} and inter-op "
                               f"{c.env['TF_NUM_INTEROP_THREADS']} there"))
        out.extend(threads)
    out.extend(precision_candidates(snapshot, allow, policy))
    return out


def native_precision(snapshot) -> tuple[str | None, str]:
    """The mixed policy this machine computes natively, or None, and why."""
    gpus = snapshot.gpus.visible
    if gpus:
        ccs = [g.compute_capability for g in gpus if isinstance(g.compute_capability, tuple)]
        if ccs and min(ccs) >= (7, 0):
            return "mixed_float16", "float16 tensor cores"
        return None, "no GPU here computes float16 natively (compute capability 7.0+)"
    if snapshot.cpu.has("avx512_bf16") or snapshot.cpu.has("amx"):
        return "mixed_bfloat16", "this CPU has native bfloat16 (AVX512_BF16/AMX)"
    return None, "this CPU has no native bfloat16 (no AVX512_BF16/AMX): not worth measuring"


def precision_candidates(snapshot, allow, policy: tuple | None) -> list[Candidate]:
    """The mixed policy this machine computes natively, where ``--allow precision`` admits it. Where the script sets
    a policy itself (``policy``: file:line, name), its line wins over the one a trial sets, so every precision
    candidate is measured with that line ignored, as advice: Keras' default float32 where the script's policy is
    another, and the native mixed policy where it differs from the script's (advice changes nothing the script runs,
    so it needs no ``--allow``)."""
    native, why = native_precision(snapshot)
    if policy is None:
        if "precision" not in allow:
            return []
        if native is None:
            return [Candidate("mixed_float16" if snapshot.gpus.visible else "mixed_bfloat16", error=why)]
        return [Candidate(native, trial={"precision": native}, why=f"{why} (--allow precision)")]
    at, own = policy
    out = []
    for name in ("float32", native):
        if name is None or name == own:
            continue
        out.append(Candidate(name, trial={"force_precision": True, **({"precision": name} if name != "float32" else {})},
                             why=(why if name != "float32" else "Keras' default policy")
                             + ", the script's own dtype policy line ignored in the trial",
                             advice=f"the script sets the dtype policy {own} itself ({at}): "
                                    + ("remove that line" if name == "float32" else f"set {name} there")))
    return out


def precision_unasked(snapshot, allow, policy: tuple | None, script: str, args=()) -> str | None:
    """Where this machine computes a mixed policy natively but ``--allow precision`` did not admit it (and the script
    sets no policy of its own, whose candidates are advice and need no ``--allow``): why it was not measured and the
    command that measures it; else None. A user on a CPU with AMX or AVX512_BF16 learns that the knob exists (a
    convnet ran 1.59x in mixed_bfloat16 on a 2-core Emerald Rapids VM with AMX) without the tuner changing their
    numerics."""
    native, why = native_precision(snapshot)
    if native is None or "precision" in allow or policy is not None:
        return None
    return (f"{native}: not measured: {why}, but mixed precision changes the numerics, so it is measured only where "
            f"asked: `redline tune --allow precision {with_args(script, args)}`")


__all__ = ["native_precision", "policy_of", "precision_candidates", "precision_unasked", "process_candidates"]

"""redline.tune(model, x, y): the in-process knobs measured in this process, for notebooks.

The model must be compiled. The input path (the data as given against redline.data's rewrites of it:
redline.data.optimize() for a tf.data pipeline, a redline.data pipeline for numpy arrays, threads for a
PyDataset; larger batches with allow=("batch",), any order with allow=("order",)), then steps_per_execution
(2, 8, 32, ... until the gain flattens) and, on TensorFlow, jit_compile are measured from the model's current
weights and optimizer state, which are put back afterwards, as is its own compilation. The result says what to
pass to compile() and fit().
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from .search import SPE_FLATTENS, Candidate, choose


@dataclass
class NotebookTuneResult:
    candidates: list
    chosen: Candidate
    default: Candidate
    reasons: list = field(default_factory=list)
    not_measured: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # the input-path stage, "as written" first; empty where none applied
    input: Candidate | None = None  # the chosen rewrite of the input, None where the input as given stays
    _rewritten: tuple = field(default=(), repr=False)

    def compile_kwargs(self) -> dict:
        """Arguments for model.compile(...) with the chosen knobs; empty when the model's own were best."""
        return {} if self.chosen is self.default else dict(self.chosen.trial["knobs"])

    def fit_kwargs(self) -> dict:
        """Arguments for model.fit(...) that go with the chosen input: ``x`` (and ``y``, ``batch_size``,
        ``steps_per_epoch``) where a rewrite of the input won; empty where the input as given was best."""
        if self.input is None:
            return {}
        x, y, batch_size, extra = self._rewritten
        out = {"x": x, "y": y, "batch_size": batch_size, **extra}
        return out

    @property
    def dataset(self):
        """The rewritten input where one won (a tf.data.Dataset, or the same arrays with a larger batch), else None."""
        return self._rewritten[0] if self.input is not None else None

    def __str__(self) -> str:
        lines = []
        ref = self.inputs[0].median if self.inputs else None
        for c in self.inputs:
            if c.error:
                lines.append(f"  {c.name:30s} dropped: {c.error[:80]}")
            elif c.runs:
                lines.append(f"  {c.name:30s} {c.median:10,.1f} steps/s ({min(c.runs):,.1f}-{max(c.runs):,.1f})  "
                             f"{c.median / ref:5.2f}x" + ("  CHOSEN" if c is self.input else "")
                             + (f"  dropped: {c.dropped}" if c.dropped else ""))
        ref = self.default.median
        for c in self.candidates:
            if c.error:
                lines.append(f"  {c.name:30s} dropped: {c.error[:80]}")
            elif c.runs:
                lines.append(f"  {c.name:30s} {c.median:10,.1f} steps/s ({min(c.runs):,.1f}-{max(c.runs):,.1f})  "
                             f"{c.median / ref:5.2f}x" + ("  CHOSEN" if c is self.chosen and c is not self.default else "")
                             + (f"  dropped: {c.dropped}" if c.dropped else ""))
            elif c.dropped:
                lines.append(f"  {c.name:30s} dropped: {c.dropped}")
        lines += [f"  because {r}" for r in self.reasons] + [f"  not measured: {n}" for n in self.not_measured]
        return "\n".join(lines)


def tune(model, x, y=None, *, batch_size=None, budget_s: float = 60, allow=(), seconds: float = 0.5) -> NotebookTuneResult:
    """Measure steps_per_execution and jit_compile for ``model.fit(x, y, batch_size=...)`` here; restore the model."""
    import keras

    from .measure import measure_fit
    from .recompile import strategy_scope

    if not isinstance(model, keras.Model):
        raise UsageError(f"tune needs a keras.Model, got {type(model).__name__}")
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    if not getattr(model, "compiled", False) or config is None:
        raise UsageError("tune measures training steps: compile the model first, e.g. model.compile(optimizer='adam', loss=...)")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not 5 <= budget_s <= 3600:
        raise UsageError(f"budget_s={budget_s!r} is not valid: give 5 to 3600 seconds (default 60)")
    if isinstance(allow, str):
        allow = (allow,)
    bad = [a for a in allow if a not in ("batch", "order")]
    if bad:
        raise UsageError(f"allow={tuple(bad)!r} is not valid here: redline.tune() measures 'batch' (larger batches) and "
                         "'order' (a nondeterministic input order); precision needs a fresh process: "
                         "`redline tune --allow precision SCRIPT`")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"batch_size={batch_size!r} is not valid: give a whole number of 1 or more, or None")
    own = dict(config)
    owner = type(model)

    class _Recorded:
        calls = {id(model): ((), own)}
        original = owner.compile

    backend = keras.backend.backend()
    cands = {"default": {"own": True, "steps_per_execution": 1, "jit_compile": "auto"}}
    if backend == "tensorflow":
        cands["jit"] = {"steps_per_execution": 1, "jit_compile": True}
    from ..detection import detect

    trial = {"candidates": cands, "rounds": 3, "seconds": seconds, "budget_s": budget_s,
             "ladder": {"jit_compile": "auto", "try_jit": backend == "tensorflow", "flattens": SPE_FLATTENS},
             "inputs": {"allow": list(allow), "usable": detect().cpu.usable}}
    with strategy_scope(model):  # where a MirroredStrategy script built it: its optimizer's variables are made there
        try:
            # silent: the measurement's fits printed their progress bars (epochs of it) into the notebook's output
            res = measure_fit(model, owner.fit, {"x": x, "y": y, "batch_size": batch_size, "verbose": 0}, trial, _Recorded,
                              lambda m: None)
        finally:
            owner.compile(model, **own)  # the model's own compilation back, with the weights and optimizer state it had
    names = list(cands) + [n for n in res["candidates"] if n not in cands]
    out = []
    for name in names:
        r = res["candidates"].get(name, {})
        spec = cands.get(name) or {"steps_per_execution": int(name.split()[1]), "jit_compile": True if name.endswith("+ jit") else "auto"}
        out.append(Candidate(name, trial={"knobs": {k: spec[k] for k in ("steps_per_execution", "jit_compile")}},
                             runs=list(r.get("steps_per_s", [])), error=r.get("error"), dropped=r.get("dropped")))
    default = out[0]
    chosen = choose(default, out[1:])
    reasons = [f"{chosen.name}: {chosen.median:,.1f} against {default.median:,.1f} steps/s ({chosen.median / default.median:.2f}x)"
               if chosen is not default else "no candidate beat the model's own compile arguments by more than the spread measured"]
    if res.get("ladder"):
        reasons.append("steps_per_execution ladder: " + ", ".join(f"{s}: {r:,.1f}" for s, r in res["ladder"]))
    found = res.get("inputs", {})
    inputs = [Candidate(name, trial={"input": found[name].get("spec")}, runs=list(found[name].get("steps_per_s", [])),
                        error=found[name].get("error"), dropped=found[name].get("dropped"))
              for name in sorted(found, key=lambda n: n != "as written")]  # "as written" first: the reference
    chosen_input, rewritten = next((c for c in inputs if c.name == res.get("input_chosen")), None), ()
    if chosen_input is not None:
        from ..data.rewrite import rewrite

        rewritten = rewrite(chosen_input.trial["input"], x, y, batch_size, {})
        reasons.insert(0, f"{chosen_input.name}: {chosen_input.median:,.1f} against {inputs[0].median:,.1f} steps/s with the "
                          f"input as given ({chosen_input.median / inputs[0].median:.2f}x): pass fit_kwargs() to fit")
    return NotebookTuneResult(out, chosen, default, reasons, res.get("not_measured", []), inputs, chosen_input, rewritten)


__all__ = ["NotebookTuneResult", "tune"]

"""The fits a script makes: which one tune measures.

A script may call ``fit`` more than once: a frozen base trained for a few epochs and then the whole model for more
(transfer learning), a warm-up, k folds. The first trial of the script as written measures its first fit, then runs
the rest of the script with training cut short (tuning/completion.py) and records every fit: a fingerprint of what a
step costs (the model's class and weights, which of them train, the compile arguments, the input's kind, the batch
size) and its size as the script asks (epochs x steps an epoch); a later fit that trains longer than every fit before
it is measured there too (its compile, often the costliest part of a trial process, paid once). The fit that trains
longest is the one every later trial measures; the fits before it run cut short there. Every other fit of its own
fingerprint then gets an in-process stage of its own, budget permitting (longest first), and `redline run` sets each
its own knobs (applying/per_fit.py).
"""

from __future__ import annotations

import time

from .batch_hooks import callback_list

#: a fit is measured in place of the longest by steps only where its own step time makes it this many times longer
#: (a cut fit's step is timed once or twice: roughly)
LONGER = 2.0


def fingerprint(model, compile_call, x, batch_size) -> str:
    """What one training step of this fit costs depends on (applying.per_fit.fingerprint, which run uses too)."""
    from ..applying.per_fit import fingerprint as of
    from ..data.rewrite import input_kind

    return of(model, compile_call, input_kind(x), batch_size)


def size(fit: dict, least: bool = False) -> int:
    """Steps the fit trains as the script asks (0 where the steps of an epoch are not known); ``least``: where an
    EarlyStopping callback may end it, the fewest it can run (``least_epochs``: least_epochs())."""
    epochs = (least and fit.get("least_epochs")) or fit.get("epochs") or 1
    return int(epochs) * int(fit.get("steps_in_epoch") or 0)


def train_s(fit: dict, least: bool = False) -> float | None:
    """Seconds the fit trains as the script asks (``least``: as size() counts it), at its step time (``step_s``:
    measured, or read off its few steps cut short); None where either is not known."""
    return size(fit, least) * fit["step_s"] if fit.get("step_s") and size(fit) else None


def timed_cut(cut_fit, model, kw: dict, entry: dict):
    """A fit after the measured one, cut short (``cut_fit``), its record ``entry`` given what it cost: ``start_s``,
    its trace if it traces and a few steps (what such a fit costs a run beyond its epochs: with_traces), and
    ``step_s``, its fastest training execution after the first (which traces) a step, where it ran two or more: the
    overfit-and-underfit tutorial's seven models take 1.8 ms (16 units) to ~20 ms (4 x 512) a step, at the same
    epochs and steps."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.begun, self.took = None, []

        def on_train_batch_begin(self, batch, logs=None):
            self.begun = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.begun is not None:
                self.took.append(time.perf_counter() - self.begun)

    timer, t = StepTimer(), time.perf_counter()
    out = cut_fit(model, **{**kw, "callbacks": [*callback_list(kw.get("callbacks")), timer]})
    entry["start_s"] = round(time.perf_counter() - t, 3)
    spe = int(getattr(model, "steps_per_execution", 1) or 1)
    if len(timer.took) >= 2:
        entry["step_s"] = round(min(timer.took[1:]) / spe, 6)
    return out


def python_extra_s(model) -> float | None:
    """Seconds `python script.py` spends at this fit's start beyond a trial (and `redline run`): Keras on TensorFlow
    builds what a new compile left unbuilt in its first traced step, so tf.function traces that step twice and lifts
    the new variables' initializers out of it, where the trial built that state ahead and traced once
    (applying/build_ahead.py). Timed here without running a step: the model's ``train_step`` traced from the shapes it
    was built from, once as the trial traced it, once with a new, unbuilt optimizer of the same configuration in
    place of the built one (put back after: no variable, weight or step count changes); the difference. None where
    nothing was built ahead for the model's current compile (JAX, the build off, nothing unbuilt) or either trace
    fails (an optimizer with no configuration to copy, a train_step that needs more than shapes)."""
    from ..applying.build_ahead import built_from

    spec, optimizer = built_from(model), getattr(model, "optimizer", None)
    if spec is None or optimizer is None:
        return None
    import tensorflow as tf

    def traced() -> float:
        step = tf.function(tf.autograph.experimental.do_not_convert(model.train_step), reduce_retracing=True)
        t = time.perf_counter()
        step.get_concrete_function(spec)
        return time.perf_counter() - t

    try:
        once = traced()
        model.optimizer = type(optimizer).from_config(optimizer.get_config())
        try:
            twice = traced()
        finally:
            model.optimizer = optimizer
    except (ValueError, TypeError, RuntimeError, NotImplementedError, KeyError, AttributeError):  # no figure: the
        return None  # prediction goes without it
    return round(max(0.0, twice - once), 3)


def stops_early(callbacks, epochs: int | None = None) -> bool:
    """An EarlyStopping (Keras' own, or a class of the script's built on it) among a fit's callbacks that can end it
    before its ``epochs`` (any, where not given): the training predicted from them is then at most what it runs.
    imbalanced_mlp's patience of 50 cannot end its 12 epochs early, and tune said its training was "at most" 6.7 s."""
    least = least_epochs(callbacks, epochs or 10**9)
    return least is not None and (epochs is None or least < epochs)


def _early_stopping(cb) -> bool:
    """``cb`` is Keras' EarlyStopping, or a class of the script's built on it."""
    return any(c.__name__ == "EarlyStopping" and c.__module__.startswith("keras") for c in type(cb).__mro__)


def least_epochs(callbacks, epochs: int) -> int | None:
    """The fewest of its ``epochs`` a fit can run under Keras' EarlyStopping callbacks (the script's own classes built
    on it too), or None where it has none: its first epoch counted (from ``start_from_epoch``) the best, then
    ``patience`` epochs (at least one) without a gain. A choice whose compile costs more than the script's is weighed
    against this training, which a run may well stop at: Keras' training guide asks 20 epochs with patience 2, and
    its runs stopped after 4 (a JAX choice weighed against 20 was predicted 1.11x and delivered 0.81x)."""
    least = [int(getattr(cb, "start_from_epoch", 0) or 0) + max(int(getattr(cb, "patience", 0) or 0), 1) + 1
             for cb in callback_list(callbacks) if _early_stopping(cb)]
    return min(epochs, *least) if least else None


def unseen(first: dict) -> str | None:
    """Why the fits the first trial recorded may not be all the script makes (the rest of the script was stopped
    before its end: at the budget, or by the discovery's own watchdog), or None. Fits after them are then neither
    measured nor counted in the predicted training."""
    after = first.get("after_fit") or {}
    if after.get("status") != "timeout":
        return None
    seen = len(first.get("fits") or []) or 1
    return (f"the first trial stopped before the script's end ({after.get('error') or 'at the budget'}): {seen} fit(s) "
            "seen; a fit after them is not known, so it is neither measured nor in the predicted training")


def with_traces(steady: float, fits: list, rate: float | None, trace_s: float | None, chosen_trace_s: float | None,
                apart: dict | None = None, once: float = 0.0, written: list | None = None,
                python_extra: float = 0.0) -> float:
    """What a choice that runs epochs ``steady`` x faster than the script as written (``rate``: its steps/s) adds to
    the script's training, where fits after the first trace a step function anew (``fits``: the first trial's, each
    with "traces"; k folds of fresh models, a model recompiled): each such fit's start costs ``trace_s`` as written
    and ``chosen_trace_s`` under the choice (the same where not known): a later fit's run cut short in each
    configuration's trial process (its trace, its validation's, a few steps), else that process's first trace. The
    first fit's trace is left out, as a run's start. kfold (4 folds of 8 short epochs): 23x faster epochs on JAX
    with spe 128, 4.4x over the training, since each fold compiled its model again for ~0.7 s. ``apart``: fingerprint
    -> the ratio a fit of it runs at instead of ``steady`` (one that keeps the script's own compile arguments gets the
    chosen process without the compile knobs: a sweep's wide fits at spe 1 ran 0.15-s epochs where the narrow ones at
    spe 32 ran 0.02-s). ``once``: seconds an in-process pick's compile costs beyond the script's own
    (tuning.inprocess.once_cost), in each later fit that traces anew and does not run apart (the first's, as a run's
    start, is left out here too: sizing.payback counts it). ``written``: each fit's seconds as written
    (sizing.fit_seconds: a fit of another workload at its own step time), else each at ``rate`` (Keras' training
    guide: a custom-metric fit kept at its own compile trains at 202 steps/s where the measured fit runs 532; counted
    at 532, it hid that much of the run from the choice's gain). ``python_extra``: what `python` pays more at each
    such start (python_extra_s: its second trace, where every run under redline builds ahead). ``steady`` itself
    where nothing retraces, no fit runs apart, or a figure is missing."""
    apart = {fp: r for fp, r in (apart or {}).items() if r}
    later = sum(1 for f in fits[1:] if f.get("traces"))
    steps = sum(size(f) for f in fits)
    traced = bool(later and trace_s)
    if not (steps and rate and steady) or not (traced or any(f.get("fingerprint") in apart for f in fits)):
        return steady
    mine = (chosen_trace_s if chosen_trace_s else trace_s) if traced else 0.0
    theirs = trace_s + python_extra if traced else 0.0
    picked = sum(1 for f in fits[1:] if f.get("traces") and f.get("fingerprint") not in apart) if traced else 0
    written = written if written and len(written) == len(fits) else [size(f) / rate for f in fits]
    runs = sum(w / apart.get(f.get("fingerprint"), steady) for f, w in zip(fits, written))
    return (sum(written) + later * theirs) / (runs + later * mine + picked * once)


def served(fits: list, index: int) -> tuple[int, int]:
    """What a compile choice made on fit ``index`` serves: the steps of every fit of its fingerprint (each runs it,
    tuning.fits' doc), and how many times a run compiles it: that fit's first trace and each later one's that traces
    anew (a fresh model, a recompile). (0, 1) where the fit is not among ``fits`` or its steps are not known."""
    fp = next((f.get("fingerprint") for f in fits if f.get("index") == index), None)
    mine = [f for f in fits if f.get("index") == index or (fp is not None and f.get("fingerprint") == fp)]
    if not mine or not all(size(f) for f in mine):
        return 0, 1
    return sum(size(f) for f in mine), 1 + sum(1 for f in mine[1:] if f.get("traces"))


def retraced(result) -> str | None:
    """The reason where later fits that trace anew make the predicted gain over the training differ from the
    epochs' (with_traces), else None. ``result``: a tuning.result.TuneResult."""
    steady, whole = result.steady_ratio(), result.ratio()
    if not steady or not whole or abs(whole / steady - 1) < 0.005:
        return None
    later = sum(1 for f in result.fits[1:] if f.get("traces"))
    from .payoff import refit_s

    mine, theirs = refit_s(result.chosen_process), refit_s(result.default)
    own = sum(1 for f in result.fits if result.per_fit.get(f.get("fingerprint"), True) == {})
    extra = result.python_extra()
    parts = ([f"{later} later fit(s) that trace a step function anew (~{theirs:,.1f} s each as written, "
              f"~{mine or theirs:,.1f} s under the choice"
              + (f"; ~{extra:,.1f} s more under `python`, which traces each twice" if extra else "") + ")"]
             if later and theirs else []) + (
        [f"{own} fit(s) that keep the script's own compile arguments at the chosen process's ratio alone"]
        if own and result.chosen_knobs is not None else []) + (
        [f"the in-process choice's compile, ~{once:,.1f} s beyond the script's own in each"]
        if later and theirs and (once := (result.whole or {}).get("once_s")) and (result.chosen_knobs
                                                                                  or result.chosen_input) else [])
    what = " and ".join(parts) or "the script's fits"
    return (f"the prediction counts {what}: {whole:.2f}x over the script's training, where its epochs run "
            f"{steady:.2f}x once traced")


def settle(result):
    """``result`` (a tuning.result.TuneResult) as it is saved: retraced()'s reason where it applies, and the script
    as written kept, nothing applied, where the choice is predicted to run the script's training slower than the
    script as written (the whole ratio under 1.0: what its fits' starts cost beyond what its epochs save). The
    process choice weighs those starts (tuning/payoff.py) and the in-process pick its own compile
    (inprocess.judge_whole), but each on its own: kfold_dataset's JAX + spe 8 + the input rewrite was saved at a
    predicted 0.63x and delivered 0.82x `python`."""
    said = retraced(result)
    if said:
        result.reasons.append(said)
    whole = result.ratio()
    picked = [c.name for c in (result.chosen_process, result.chosen_knobs, result.chosen_input)
              if c is not None and c is not result.default]
    if whole is not None and whole < 1.0 and picked:
        result.reasons.append(f"{' and '.join(picked)}: not applied: predicted {whole:.2f}x the script as written over "
                              "its training, its fits' starts costing more than its epochs save; the script as "
                              "written stays")
        result.chosen_process, result.chosen_knobs, result.chosen_input, result.per_fit = result.default, None, None, {}
    return result


def longest(fits: list) -> dict | None:
    """The fit that trains longest: the most steps, the earliest of equals (k folds of one model: the first); but where
    every fit's step time is known (train_s) and another's makes it LONGER x that one's seconds, that other. Seven
    models of 40 epochs of 20 steps each: the 4 x 512 network trains ~10x the 16-unit one, which comes first; of its
    workload's fits (the same fingerprint and steps: the same network with dropout or L2), the earliest."""
    if not fits:
        return None
    top = max(fits, key=size)
    timed = [train_s(f) for f in fits]
    if all(timed) and max(timed) > LONGER * train_s(top):
        top = fits[timed.index(max(timed))]  # the earliest of its workload: fewer fits cut short before it in a trial
        return next(f for f in fits if f.get("fingerprint") == top.get("fingerprint") and size(f) == size(top))
    return top


def others(fits: list, measured: dict) -> list:
    """The fits worth their own in-process stage besides ``measured``: one per fingerprint other than its, that trains
    (steps known), longest first."""
    seen, out = {measured.get("fingerprint")}, []
    for f in sorted(fits, key=lambda f: (-size(f), f["index"])):
        if f.get("fingerprint") not in seen and size(f) > 0:
            seen.add(f.get("fingerprint"))
            out.append(f)
    return out


def own_knobs(fits: list, measured: dict, first_rate, rate, per_trial: float, left, stage) -> tuple[dict, list, list]:
    """Every other fit of its own fingerprint (others), its own knobs: an in-process stage of its own (``stage(fit)``:
    tuning.inprocess.Stage) where the budget (``left()``) still holds a trial process (``per_trial`` s) and its training
    could win that back. ``first_rate``: the first fit's steps/s, ``rate``: the measured fit's. Returns (fingerprint ->
    knobs, reasons, not measured); a fit measured nowhere gets no knobs: nothing measured, nothing applied."""
    per_fit, reasons, not_measured = {}, [], []
    for f in others(fits, measured):
        what = f"fit {f['index']} ({f['epochs']} epoch(s) of {f['steps_in_epoch']} steps)"
        first = f["index"] == fits[0]["index"] and first_rate
        own_rate = first or (f.get("step_s") and 1 / f["step_s"])
        r = own_rate or rate
        short = bool(r) and size(f) / r < per_trial  # no choice could win back what measuring it costs
        if short or left() < per_trial:
            per_fit[f["fingerprint"]] = {}
            if short:
                reasons.append(f"{what}: its own steps_per_execution / jit_compile not measured: it trains about "
                               f"{size(f) / r:,.1f} s as written (at {r:,.1f} steps/s"
                               + ("" if first else ", from its steps cut short in the first trial" if own_rate else
                                  f", fit {measured.get('index', 1)}'s rate")
                               + f"), less than a trial process of the script takes here (~{per_trial:,.0f} s): no "
                               "choice could win that back; it keeps the script's own compile arguments")
            else:
                not_measured.append(f"{what}: its own steps_per_execution / jit_compile: the budget ran out (it keeps "
                                    "the script's own compile arguments)")
            continue
        own = stage(f)
        if own.inprocess or own.chosen_knobs:
            knobs = own.chosen_knobs.trial.get("knobs", {}) if own.chosen_knobs else {}
            per_fit[f["fingerprint"]] = knobs
            reasons.append(f"{what}, its own knobs: " + (", ".join(f"{k}={v!r}" for k, v in knobs.items()) or
                                                         "the script's own compile arguments")
                           + (f" ({own.chosen_knobs.median / own.inprocess[0].median:.2f}x in its training steps)"
                              if own.chosen_knobs and own.inprocess and own.inprocess[0].median else ""))
        not_measured += [f"{what}: {n}" for n in own.not_measured]
    return per_fit, reasons, not_measured


__all__ = ["LONGER", "fingerprint", "longest", "others", "own_knobs", "retraced", "served", "settle", "size",
           "least_epochs", "stops_early", "timed_cut", "train_s", "unseen", "with_traces"]

"""The run as it runs: what one of the script's epochs costs whole, its validation, callbacks and progress output
included, not only its training steps.

A user's epoch is training, then the validation the script asks for (``validation_data`` / ``validation_split``, every
``validation_freq`` epochs), the callbacks' work and the progress output, and on TensorFlow a new input iterator at
each epoch start. Backends differ in all of these: Keras on JAX and torch runs async-safe batch-end callbacks on a
thread pool, TensorFlow never does, and only TensorFlow's tf.data iterators stall at epoch starts. A trial that timed
training steps alone read JAX at 0.82x on an MLP that ran 1.53x whole.

Two ways to measure, by how long an epoch takes:
- **epochs**: short epochs run whole, as the script runs them (its own fit arguments, its callbacks and verbose, with
  more epochs), and each later cycle of ``validation_freq`` epochs (as many as span half a measurement's seconds) gives
  one figure: steps of training per second of the whole cycle. The first epoch traces and is not counted.
- **steps**: epochs too long to run several of: the training rate measured in steps (with the script's callbacks and
  verbose attached), plus the validation the script runs per epoch, timed in a short fit of two epochs (the second's
  validation: the first traces). The iterator's epoch-start stall is not in this figure.

The pure functions here turn recorded event times into figures, so the arithmetic is tested on given times.
"""

from __future__ import annotations

import math
import time

from . import tails
from .batch_hooks import callback_list
from .compare import median, spread
from .steps import untimed

#: the fit arguments that add to training what a user's epoch costs
EXTRAS = ("validation_data", "validation_split", "validation_freq", "validation_steps", "validation_batch_size",
          "callbacks", "verbose")
#: whole epochs are run where the warm epoch and three cycles take at most this many times a measurement's seconds
#: (4.8 s at tune's 0.8). Longer epochs are read in steps, their validation timed apart. On a 2-core VM, the epochs
#: of 1.4-2.6 s of tabular_mlp and rnn_text as written cost 0-0.07 s beyond their training steps without validation
#: and 0.08-0.25 s with it (one of 26 processes: 1.09 s), while four of them, timed whole, took 6-10 s of every trial
#: process of the script as written
EPOCH_SPAN = 6


def extras(fit_args: dict) -> dict:
    """The script's validation, callbacks (a new list, the same objects) and verbose, as its fit call passes them."""
    out = {k: fit_args[k] for k in EXTRAS if fit_args.get(k) is not None}
    out["callbacks"] = callback_list(out.get("callbacks"))
    out.setdefault("verbose", "auto")
    return out


def validates(fit_args: dict) -> bool:
    return fit_args.get("validation_data") is not None or bool(fit_args.get("validation_split"))


def cycle(fit_args: dict) -> int:
    """Epochs from one validation to the next (``validation_freq`` as an int; a list of epochs counts as 1)."""
    f = fit_args.get("validation_freq", 1)
    return f if isinstance(f, int) and not isinstance(f, bool) and f >= 1 else 1


def epoch_rates(events, steps: int, per: int = 1) -> list[float]:
    """Steps/s of whole epochs: one figure per cycle of ``per`` epochs after the first epoch (which traces), each
    ``per * steps`` training steps over the seconds from the end of the epoch before the cycle to the end of its last.
    ``events``: (time, kind) as the Steps callback records them."""
    ends = [t for t, kind in events if kind == "epoch_end"]
    out, i = [], 1
    while i + per - 1 < len(ends):
        took = ends[i + per - 1] - ends[i - 1]
        if took > 0:
            out.append(per * steps / took)
        i += per
    return out


def epoch_seconds(events) -> list[float]:
    """Seconds of each epoch, from its begin to its end (``events`` as epoch_rates reads them)."""
    begins = [t for t, kind in events if kind == "epoch_begin"]
    ends = [t for t, kind in events if kind == "epoch_end"]
    return [e - b for b, e in zip(begins, ends)]


def first_extra(events, epoch_s: float) -> float:
    """Seconds the first epoch took beyond a later one's ``epoch_s`` (never below 0): what compiling costs in it (the
    test function, an epoch's smaller last batch; under functions made anew, the training step too)."""
    took = epoch_seconds(events)
    if not took:
        return 0.0
    begin = next(t for t, kind in events if kind == "epoch_begin")
    return max(0.0, took[0] - untimed(begin, begin + took[0]) - epoch_s)


def train_rates(events, steps: int) -> list[float]:
    """Training steps/s inside each epoch after the first: its ``steps`` over the seconds from its begin to its
    validation (or its end, where it has none), as a run of training steps over several short epochs is timed. Read
    from the epoch and validation boundaries, which Keras calls in order: its batch-end callbacks may run on a thread
    pool (JAX, torch), late, and a rate read from them ran 1.28x under the rounds' on a 3,000 steps/s MLP."""
    begins = [t for t, kind in events if kind == "epoch_begin"]
    ends = [t for t, kind in events if kind == "epoch_end"]
    tests = [t for t, kind in events if kind == "test_begin"]
    out = []
    for b, e in list(zip(begins, ends))[1:]:
        stop = min([t for t in tests if b <= t <= e] + [e])
        if stop > b:
            out.append(steps / (stop - b))
    return out


def whole_epochs(fit_args: dict, steps: int | None, train: float | None, seconds: float) -> bool:
    """True where measure() below runs whole epochs (mode "epochs"): the warm epoch and three cycles of validation_freq
    epochs (each at least ``seconds`` / 2 of training) fit in EPOCH_SPAN x ``seconds``."""
    if not steps or not train:
        return False
    epoch_train, per = steps / train, cycle(fit_args)
    per *= max(1, math.ceil(seconds / 2 / (per * epoch_train)))
    return (1 + 3 * per) * epoch_train <= EPOCH_SPAN * seconds


def validation_seconds(events) -> list[float]:
    """Seconds of each validation pass but the first (which traces the test function)."""
    begins = [t for t, kind in events if kind == "test_begin"]
    ends = [t for t, kind in events if kind == "test_end"]
    return [e - b for b, e in zip(begins, ends)][1:]


def overhead(whole_rate: float, train_rate: float, steps: int) -> float:
    """Seconds an epoch of ``steps`` costs beyond its training steps: at ``whole_rate`` (whole epochs) against
    ``train_rate`` (steps alone); never below 0."""
    return max(0.0, steps / whole_rate - steps / train_rate)


def with_overhead(train_rate: float, steps: int, extra_s: float) -> float:
    """Steps/s of whole epochs of ``steps`` steps at ``train_rate``, each ``extra_s`` seconds more."""
    return steps / (steps / train_rate + extra_s)


def gain_whole(train_rate: float, steps: int, extra_s: float, gain: float) -> float:
    """What a gain ``gain`` in training steps/s makes of whole epochs: their rate after against before (the epoch's
    other seconds stay as they are)."""
    return with_overhead(train_rate * gain, steps, extra_s) / with_overhead(train_rate, steps, extra_s)


def measure(model, fit, fit_args: dict, steps: int | None, train_runs: list, seconds: float, spe: int,
            steps_callback, once: bool = False) -> dict:
    """The script's epochs as they run, in the process and configuration of the trial (see the module's doc).
    ``fit_args``: the script's own fit call; ``steps``: its training steps an epoch; ``train_runs``: steps/s measured
    in steps; ``steps_callback``: tuning.steps.Steps. Returns {"mode", "steps_per_s" (whole epochs), "overhead_s",
    "validation_s", "epoch_train_s", "first_extra_s" (the first epoch's seconds beyond a later one's)}; mode None where
    nothing could be measured, with why. ``once``: the first epoch's extra is wanted (the model's functions made anew:
    what compiling costs a run), so in steps, two short epochs run even where the script does not validate."""
    train = median(train_runs)
    if not steps or not train:
        return {"mode": None, "why": "no training rate or steps an epoch to start from"}
    per = cycle(fit_args)
    script = extras(fit_args)
    kw = {k: v for k, v in fit_args.items() if k not in ("epochs", "initial_epoch", "callbacks")}
    own, kw["verbose"] = script["callbacks"], script["verbose"]
    epoch_train = steps / train
    per *= max(1, math.ceil(seconds / 2 / (per * epoch_train)))  # each figure spans at least ``seconds`` / 2 of training
    if whole_epochs(fit_args, steps, train, seconds):
        marks = steps_callback(None, spe)
        fit(model, **kw, epochs=1 + 3 * per, callbacks=[*own, marks])
        rates = epoch_rates(marks.events, steps, per)
        inside = train_rates(marks.events, steps)  # the training steps alone, inside the same epochs
        if rates:
            return {"mode": "epochs", "steps_per_s": [round(r, 3) for r in rates],
                    "train_steps_per_s": [round(r, 3) for r in inside],
                    "overhead_s": round(overhead(median(rates), median(inside) if len(inside) >= 3 else train, steps), 4),
                    "validation_s": [round(v, 4) for v in validation_seconds(marks.events)],
                    "epoch_train_s": round(epoch_train, 4),
                    "first_extra_s": round(first_extra(marks.events, steps / median(rates)), 4)}
        # the script's callbacks stopped training (EarlyStopping, TerminateOnNaN): measured in steps below
    extra_s, vals, first = 0.0, [], None
    if validates(fit_args) or once:
        m = max(spe, int(train * seconds / 4) // spe * spe)
        marks = steps_callback(None, spe)
        fit(model, **{**tails.batched(kw), "steps_per_epoch": m}, epochs=2, callbacks=[*own, marks])
        vals = validation_seconds(marks.events)
        extra_s = (median(vals) or 0.0) / cycle(fit_args) if vals else 0.0
        took = epoch_seconds(marks.events)
        first = first_extra(marks.events, took[1]) if len(took) >= 2 else None  # two epochs of m steps alike
    return {"mode": "steps", "steps_per_s": [round(with_overhead(r, steps, extra_s), 3) for r in train_runs if r],
            "overhead_s": round(extra_s, 4), "validation_s": [round(v, 4) for v in vals],
            "epoch_train_s": round(epoch_train, 4), **({"first_extra_s": round(first, 4)} if first is not None else {})}


def of_default(whole, into: dict, rounds, recompile, keep, log) -> dict:
    """The script's own compile in whole epochs (``whole()``: measure() of it, after ``recompile()``; the state put back
    with ``keep`` after). Where its training figure was only its calibration, to be read inside these epochs
    (``into["default"]["calibration"]``), those are its figures; where there were no whole epochs after all (the
    script's callbacks stopped its training), its ``rounds()`` run, then the whole epochs again."""
    for _ in range(2):
        try:  # what the script's epochs cost whole, in this process's configuration
            recompile()
            got = whole()
        except Exception as exc:  # noqa: BLE001  the figure in steps stands, and the result says why
            got = {"mode": None, "why": f"{type(exc).__name__}: {exc}"[:300]}
            log(f"  whole epochs not measured: {type(exc).__name__}: {str(exc)[:120]}")
        finally:
            keep.restore()
        if not into["default"].pop("calibration", False):
            break
        inside = got.pop("train_steps_per_s", None) or []
        if len(inside) >= 3:  # the training steps inside the epochs timed: the rounds' figures
            into["default"]["steps_per_s"] = inside
            break
        into.pop("default")
        rounds()
        if not into.get("default", {}).get("steps_per_s"):
            break
    return got


def whole_pick(out: dict, trial: dict, fit_args: dict, into: dict, feeds: dict, chosen_input: str, whole, recompile, keep, log) -> dict:
    """The in-process stage's pick (tuning.inprocess.pick: the knobs and input its rounds would choose) and the script's
    own compile on the input as written, each measured in whole epochs as the script runs them (measure() above), one
    after the other in this process: the ratio of the two is what the pick adds to the run, validation and callbacks
    included; beside a pick with jit_compile, its twin without it where the rounds make that a choice too ("twin"). {}
    where the rounds pick nothing."""
    from .inprocess import pick, twin

    name = pick(out, trial["candidates"])
    if name is None and chosen_input == "as written":
        return {}
    found = {"knobs": name, "input": None if chosen_input == "as written" else chosen_input}
    written = ((out["inputs"].get("as written") or {}).get("steps_per_s") if found["input"] else None) \
        or (into.get("default") or {}).get("steps_per_s", [])
    sides = [("reference", {"own": True, "input": "as written"}, written),
             ("pick", {**(into[name].get("knobs", {}) if name else {"own": True}), "input": chosen_input},
              (into[name] if name else out["inputs"][chosen_input])["steps_per_s"])]
    # under jit_compile, each side with its functions made anew, so its first epoch compiles as a run's does (XLA's
    # compile of each step and shape against the script's own trace); other picks trace what the script's own
    # compile traces, and their first epochs, each function traced once in this process, differ by what they add.
    # (A steps_per_execution pick made anew too read kfold's spe 32 on JAX at ~0.3 s more a fold, 4 folds against
    # the ~0.8 s it saves, and kept it off, where the tuner without that, choosing spe 94, ran 1.24x faster in 5
    # interleaved runs, wall 6.6 against 7.2 s: the stage's first epoch pays once what a run's later folds do not)
    fresh = bool(name and (into[name].get("knobs") or {}).get("jit_compile"))
    t0 = time.perf_counter()
    for role, cand, train in sides:
        found[role] = _whole_of(role, cand, train, fit_args, feeds, whole, recompile, keep, log, fresh=fresh)
    took = time.perf_counter() - t0
    if took <= AGAIN_S and max(spread(found[r].get("steps_per_s") or []) for r, _, _ in sides) > AGAIN_SPREAD \
            and all(found[r].get("mode") == "epochs" for r, _, _ in sides):
        for role, cand, train in reversed(sides):  # once more each, the other way round: their figures pooled
            more = _whole_of(role, cand, train, fit_args, feeds, whole, recompile, keep, log)
            if more.get("mode") == "epochs":
                found[role]["steps_per_s"] = [*found[role]["steps_per_s"], *more["steps_per_s"]]
                found[role]["again"] = True
    plain = twin(out, trial["candidates"], name) if fresh else None
    if plain:  # a jit pick's twin without it, whole too: it stands in the pick's place where XLA's compile does not pay
        found["twin"] = {"knobs": plain, **_whole_of("twin", {**into[plain].get("knobs", {}), "input": chosen_input},
                                                     into[plain]["steps_per_s"], fit_args, feeds, whole, recompile,
                                                     keep, log)}
    return found


#: where the whole epochs of the reference or the pick spread more than this, and the two took at most AGAIN_S, each
#: is measured once more, the other way round (thread_lines at spe 1 on a 2-core VM: 149, 336 and 263 steps/s in
#: three cycles; its epochs run in two modes, and three figures put the harmonic mean wherever the draw falls)
AGAIN_SPREAD = 0.25
AGAIN_S = 10.0


def _whole_of(role, cand, train, fit_args, feeds, whole, recompile, keep, log, fresh: bool = False) -> dict:
    """One side of whole_pick measured in whole epochs: its input as run feeds it, its knobs recompiled in. ``fresh``:
    the model's train, test and predict functions made anew (traced, and under jit_compile compiled, in its first
    epoch, with the shapes it meets there), so its first_extra_s is what its compile costs a run."""
    f = feeds[cand["input"]]
    args = fit_args if cand["input"] == "as written" else {  # a rewrite: its input, as run feeds it to fit
        **fit_args, "x": f.x, "y": f.y, "batch_size": f.batch_size, **f.kwargs, **(f.validation or {}),
        **({"steps_per_epoch": f.cap} if f.endless and f.cap else {})}
    try:
        recompile(cand)
        if fresh:
            for name in ("train_function", "test_function", "predict_function"):
                setattr(recompile.model, name, None)
        res = whole(cand, args, [r / f.scale for r in train], fresh)
        res["steps_per_s"] = [round(r * f.scale, 3) for r in res.get("steps_per_s", [])]
        return {**res, "fresh": True} if fresh else res
    except Exception as exc:  # noqa: BLE001  the pick's figure in steps stands, and the result says why
        log(f"  whole epochs of the {role} not measured: {type(exc).__name__}: {str(exc)[:120]}")
        return {"mode": None, "why": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        keep.restore()


#: epochs python_drops() times after its first (which has no finished iterator to drop): as many as take about
#: PY_SPAN_S, PY_EPOCHS to PY_MOST. An epoch start waits or not, at random (an autoencoder's 0.4-s epochs: 50-65% of
#: them, ~0.17 s each, some 0.6 s), so a few epochs in each of two or three processes give the mean
PY_EPOCHS, PY_MOST, PY_SPAN_S = 3, 6, 2.5
#: where epochs are too long to be measured whole (mode "steps"), the first trial still times PY_LONG of `python`'s
#: epoch starts (PY_LONG full epochs, then the first batch of one more), where they take at most PY_LONG_SHARE of the
#: budget: vit_classifier's ~6-s epochs waited 2.2-4.4 s at 10 of 15 epoch starts under `python` on a 2-core Emerald
#: Rapids VM, while none of the 7 drops of its trials' fits cut short did, and the wait modelled from them was 0.6 s
PY_LONG, PY_LONG_SHARE = 2, 0.1


def py_epochs(epoch_s: float | None) -> int:
    """Epochs python_drops() times where an epoch's training takes ``epoch_s``."""
    return max(PY_EPOCHS, min(PY_MOST, int(PY_SPAN_S / epoch_s))) if epoch_s else PY_EPOCHS


def drop_waits(made, begins, others, after: float) -> list[float]:
    """Seconds the epoch loop spent between making each iterator (``made``, times after ``after``) and the next batch
    it began (``begins``: train and test batch begins): Keras drops the finished iterators there, on its own thread,
    and the destructor waits for tf.data's autotune thread. An iterator made with another event (an epoch's or a
    validation's end or start, in ``others``) before the next batch is one Keras made at a loop's end: nothing is
    dropped there (the loop still holds the last one), and the time to the next batch is its bookkeeping."""
    begins, others = sorted(begins), sorted(others)
    out = []
    for m in sorted(t for t in made if t > after):
        nxt = next((b for b in begins if b >= m), None)
        if nxt is not None and not any(m < o < nxt for o in others):
            out.append(nxt - m)
    return out


def python_drops(model, fit, fit_args: dict, epochs: int = PY_EPOCHS, cut_last: bool = False) -> dict | None:
    """`python`'s epoch-start waits, timed: 1 + ``epochs`` epochs of the script's fit (its validation, callbacks and
    verbose) with the finished iterators left to Keras (applying.iterator_release.as_python), each drop's seconds read
    from when the iterator replacing it was made to the next batch. The release thread that takes them off the loop in
    every trial also times their destructors, but not as `python` meets them: a 2-core Zen 4 VM, an autoencoder's
    0.4-s epochs with validation: 0.11-0.14 s an epoch start under `python`, 0.01 with the release, while the drops
    the release timed put it at 0.02. ``cut_last``: the last epoch ends after its first batch (its start is what is
    timed: epochs of seconds). {"epochs", "waits_s", "wait_s" (an epoch's, on average)}; None where the release is not
    in place (another backend) or no epoch after the first ran."""
    import keras

    from ..applying.iterator_release import as_python

    begins, others = [], []

    class Marks(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            begins.append(time.perf_counter())

        on_test_batch_begin = on_train_batch_begin

        def on_epoch_begin(self, epoch, logs=None):
            others.append(("epoch_begin", time.perf_counter()))
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if cut_last and self.epoch == epochs:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            others.append(("epoch_end", time.perf_counter()))

        def on_test_begin(self, logs=None):
            others.append(("test_begin", time.perf_counter()))

        def on_test_end(self, logs=None):
            others.append(("test_end", time.perf_counter()))

    script = extras(fit_args)
    kw = {k: v for k, v in fit_args.items() if k not in ("epochs", "initial_epoch", "callbacks")}
    kw["verbose"] = script["verbose"]
    with as_python() as made:
        fit(model, **kw, epochs=1 + epochs, callbacks=[*script["callbacks"], Marks()])
    ends = [t for kind, t in others if kind == "epoch_end"]
    ran = len(ends) - 1
    if not made or ran < 1:
        return None
    waits = drop_waits(made, begins, [t for _, t in others], ends[0])
    return {"epochs": ran, "waits_s": [round(w, 4) for w in waits], "wait_s": round(sum(waits) / ran, 4)}


__all__ = ["EXTRAS", "PY_EPOCHS", "PY_LONG", "PY_LONG_SHARE", "cycle", "drop_waits", "epoch_rates", "epoch_seconds",
           "extras", "first_extra", "gain_whole", "measure", "of_default", "overhead", "py_epochs", "python_drops",
           "validates", "validation_seconds", "whole_pick", "with_overhead"]

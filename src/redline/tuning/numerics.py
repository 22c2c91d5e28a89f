"""Learns the same: the loss a configuration reaches after the same few steps, from the same initial weights, against
what the script as written reaches in its own trial processes.

Inside a trial (``check``): the model's weights are set to those the first trial of the script as written saved (where
the model has the same weights' shapes), the random seed is fixed, and up to ``STEPS`` steps (as many in every trial
of one tune: the first trial decides, fewer where steps are slow) run in the script's order
(arrays unshuffled), with its compile arguments; the loss after them is the figure. A backend, oneDNN, threads, a
parallel map or a precision may change the numerics: rounding, the order of reductions, random streams (dropout
masks differ between backends even under one seed). So a candidate is dropped only where its loss is not a number,
or lies outside the as-written losses widened by their own spread and by ``TOL`` of their size (``judge``): the guard
catches a configuration that does not learn, not one that rounds differently.
"""

from __future__ import annotations

import math

from ..applying.seeding import set_random_seed
from .compare import median

#: steps of the check; a candidate's loss may differ from the script's own by this share of it, beyond their spread
STEPS, TOL = 20, 0.25


def steps_for(rate: float | None, seconds: float) -> int:
    """The check's steps where the first trial decides them: STEPS, or fewer where steps are slow (about 2 x
    ``seconds`` of them at ``rate``), at least 3. Every later trial of the same tune runs as many."""
    return int(min(STEPS, max(3, (rate or 0.0) * 2 * seconds)))


def steps_of(steps: int, spe: int, cap: int | None) -> int:
    """The steps a check of ``steps`` runs: whole executions of ``spe``, within one epoch of ``cap`` batches."""
    steps = max(spe, steps - steps % spe)
    return min(steps, max(spe, cap - cap % spe)) if cap else steps


def check(model, fit, feed, spe: int, weights_path: str | None, opener, steps: int = STEPS, callbacks=()) -> dict:
    """In a trial: the loss after ``steps`` steps (a whole number of executions) from the shared initial weights. The
    first trial to get here with ``weights_path`` absent saves its own (``opener``: the ``open`` from before the
    sandbox, so the file lands where the next trial reads it). ``callbacks``: ones that only read (a timer: where the
    check is a calibration's warm-up, tuning/rounds.py), or that stop it after one execution (tuning/first_look.py:
    a rival then out, whose check is not reported)."""
    import numpy as np

    source = "own"
    if weights_path:
        try:
            with opener(weights_path, "rb") as f:
                data = np.load(f)
                saved = [data[f"arr_{i}"] for i in range(len(data.files))]
            now = model.get_weights()
            if len(saved) == len(now) and all(a.shape == b.shape for a, b in zip(saved, now)):
                model.set_weights(saved)
                source = "shared"
        except FileNotFoundError:
            with opener(weights_path, "wb") as f:
                np.savez(f, *model.get_weights())
            source = "saved"
    set_random_seed(0)  # as keras.utils.set_random_seed, without importing TensorFlow where the script has not
    # the layers' own random streams (dropout, noise, augmentation) are variables outside the weights, advanced by every
    # step the trial ran before: reset, so every trial draws the same masks here
    for i, v in enumerate(v for v in model.variables if v.path.endswith("seed_generator_state")):
        v.assign(np.array([i, 0], dtype=str(v.dtype)))
    steps = steps_of(steps, spe, feed.cap)
    kwargs = {**feed.kwargs, **({"shuffle": False} if feed.batch_size else {})}
    history = fit(model, feed.x, feed.y, batch_size=feed.batch_size, epochs=1, steps_per_epoch=steps, verbose=0,
                  callbacks=list(callbacks), **kwargs)
    loss = (history.history.get("loss") or [float("nan")])[-1]
    return {"loss": float(loss), "steps": steps, "weights": source}


def warm_steps(trial: dict, out: dict, n: int, spe: int, cap: int | None, bar: float | None) -> int:
    """A calibration's warm-up count: ``n``, or the check's count where the first trial has set it (about 2 x
    ``seconds`` of steps) and this trial checks its loss, so the warm-up is the check (as_warm_up): one fit and one
    input iterator fewer (fine_tune: a check's own fit took 6.4 s for its 10 steps of 0.17 s). Not for a rival with a
    ``bar``: its verdict comes first."""
    if trial.get("check") and trial.get("check_steps") and not bar and "check" not in out:
        return max(n, steps_of(trial["check_steps"], spe, cap))
    return n


def as_warm_up(trial: dict, out: dict, model, fit, feed, spe: int, n: int, opener, callbacks: list) -> bool:
    """Where the trial checks its loss after as many steps as a calibration's warm-up of the script's own compile on its
    input as written (``n``, in one epoch of ``feed``), the check is that warm-up: one fit fewer, the same steps from
    the shared weights, timed by the step marks among ``callbacks`` (slow steps: xception_scratch's check ran 3 more
    steps of 5 s after its measurements, 21 s). Records it in ``out["check"]`` (marked ``warm_up``: kept where the trial's count is ``n``);
    False where it is not run, or failed (``out["check"]["error"]``: a plain warm-up follows)."""
    if not trial.get("check") or "check" in out or steps_of(trial.get("check_steps") or n, spe, feed.cap) != n:
        return False
    try:
        out["check"] = {**check(model, fit, feed, spe, trial.get("weights"), opener, n, callbacks), "warm_up": True}
    except Exception as exc:  # noqa: BLE001  no figure from it: the warm-up runs plain, the check after the measurements
        out["check"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        return False
    return True


def in_trial(trial: dict, folded: dict | None, rate: float, seconds: float, spe: int, cap: int | None, late, run,
             restore) -> dict | None:
    """A trial's loss check after its measurements: ``folded`` (its warm-up, where that ran as many steps as the check
    counts: slow steps) or ``run(steps)`` now, the model's state put back with ``restore()`` after; None where the
    deadline came first. A check that fails leaves the candidate judged on speed alone, and says why."""
    count = trial.get("check_steps") or steps_for(rate, seconds)
    if folded and folded["steps"] == steps_of(count, spe, cap):
        return folded  # fast steps check more steps than they warm up with
    if late():
        return None
    try:
        got = run(count)
        if folded and folded.get("weights") == "saved":  # this trial's own, saved in its warm-up
            got["weights"] = "saved"
        return got
    except Exception as exc:  # noqa: BLE001  no figure: the candidate is judged on speed alone, and the result says why
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        restore()


def judge(as_written: list, losses: list, steps: int | None = None) -> str | None:
    """Why a candidate with ``losses`` does not learn as the script does (its own ``as_written`` losses), or None."""
    after = f"after {steps} steps " if steps else ""
    base = [v for v in as_written if math.isfinite(v)]
    bad = [v for v in losses if not math.isfinite(v)]
    if bad and base:
        return f"its loss {after}was {bad[0]} where the script as written reached {median(base):.4g}"
    if not base or not losses or bad:
        return None  # nothing to compare with (the script itself gives no finite loss)
    lo, hi, m = min(base), max(base), median(losses)
    width = max(hi - lo, TOL * max(abs(lo), abs(hi)))
    if lo - width <= m <= hi + width:
        return None
    return (f"its loss {after}was {m:.4g}, outside {lo - width:.4g} to {hi + width:.4g} (the script as written reached "
            f"{lo:.4g} to {hi:.4g} in its own trial processes, widened by {width:.3g})")


__all__ = ["STEPS", "TOL", "as_warm_up", "check", "in_trial", "judge", "steps_for", "steps_of", "warm_steps"]

"""Whether a per-process choice's compile is paid back by what it saves over the script's training.

Another backend compiles where TensorFlow traces (JAX's XLA compile of the train and test steps, at each new shape),
and a run pays that once, at its start, before any of its faster epochs: on a short training, a candidate whose epochs
run faster can still lose the run. Each trial process reports what its start cost beyond its steps: the script's own
step traced (and compiled) in its calibration (``trace_s``), and its first whole epoch beyond a later one
(``first_extra_s``: the test step, the shapes the epoch meets). The candidate's against the script as written's,
both from fresh processes as `python` and `redline run` start them, is what the choice costs a run once. Each of the
script's later fits that traces anew (k folds of fresh models, a model compiled again) pays its own start again, timed
in each process as that fit ran cut short (``refit_s``): kfold_dataset's JAX ran its epochs 1.62x, but each of its 3
later folds started ~2.6 s against ~0.8 s, and the run delivered 0.82x `python`.
The in-process stage weighs its own picks the same way (tuning.inprocess.once_cost).

Paid means a gain a choice is taken for: what the candidate saves beyond its compile is at least MIN_GAIN of the run
(the script's training as written over its training under the candidate, compile included, at least 1 + MIN_GAIN).
Keras' training guide (13 fits, 12 of them on fresh models): JAX's epochs ran 3.4x, its compile at each later fit
left a predicted 1.04x over the training, and the run delivered 0.96x `python` (0.80x in wall time).
"""

from __future__ import annotations

from .compare import MIN_GAIN, median


def margin(training_s: float) -> float:
    """Seconds of ``training_s`` a candidate must save beyond its compile: a run of T/(1 + MIN_GAIN) at the most."""
    return training_s * MIN_GAIN / (1 + MIN_GAIN)


def start_s(cand) -> float | None:
    """Seconds a trial process of ``cand`` spent compiling beyond its steps: its trace and the median of its first
    epochs' extra (where whole epochs were timed), or None where no trace was reported."""
    trace = cand.detail.get("trace_s")
    if trace is None:
        return None
    extra = [x for x in cand.detail.get("first_extra") or [] if x is not None]
    return trace + (median(extra) if extra else 0.0)


def ended(cand, ending: dict) -> None:
    """How the whole script ended under ``cand`` (the rest run cut short, or a completion trial) into its figures:
    what its process had paid for TensorFlow's import by then, where it said (code after fit can import it where
    the measured fit did not)."""
    if ending.get("tf_s") is not None:
        cand.detail["tf_end_s"] = max(cand.detail.get("tf_end_s") or 0.0, ending["tf_s"])


def tf_s(cand) -> float | None:
    """Seconds a run of ``cand`` spends importing TensorFlow: the median over its trial processes of what each had
    paid by its figures, or more where the script, run on to its end (cut short), imported it later (a model saved
    after fit on JAX); None where no process said."""
    paid = cand.detail.get("tf_s") or []
    return max(median(paid), cand.detail.get("tf_end_s") or 0.0) if paid else None


def with_tf(cand, default) -> tuple[float, float] | None:
    """(``cand``'s, the script as written's) seconds of TensorFlow's import, where both processes said: one import,
    as a run pays it, for each side that imports it at all, at the least of their figures (the script as written's
    first trial imported it in 5.4 s of wall time beside a spare, where a JAX run that imported it to save a model
    after fit took 2.6; taken apart, that run was credited 2.8 s it never saves. The figures are CPU seconds now,
    steps.tf_paid, which processes beside it slow far less; the least still stands for both)."""
    mine, theirs = tf_s(cand), tf_s(default)
    if mine is None or theirs is None:
        return None
    paid = min((x for x in (mine, theirs) if x > 0), default=0.0)
    return (paid if mine > 0 else 0.0, paid if theirs > 0 else 0.0)


def process_once(cand, default) -> float:
    """Seconds ``cand``'s process costs a run once beyond the script as written's: its compile, and TensorFlow's
    import where one process pays it and the other does not (transformer_block: JAX's step compiled in 2.2 s against
    TensorFlow's 1.0, but a JAX run that never imports TensorFlow starts ~2.3 s sooner; left out, JAX at 1.64x was
    dropped as not worth its process, and the tuned run delivered 0.56x plain JAX). Never below 0; 0.0 where either
    compile figure is missing, or ``cand`` is the script as written."""
    if cand is default:
        return 0.0
    mine, theirs = start_s(cand), start_s(default)
    if mine is None or theirs is None:
        return 0.0
    imports = with_tf(cand, default) or (0.0, 0.0)
    return max(0.0, mine + imports[0] - theirs - imports[1])


def refit_s(cand) -> float | None:
    """Seconds a later fit that traces anew costs at its start in ``cand``'s process (as tuning.fits.with_traces)."""
    return cand.detail.get("refit_s") or cand.detail.get("trace_s")


def once_s(cand, default) -> float:
    """Seconds ``cand`` costs a run beyond the script as written's where it compiles: at the start (process_once) and
    at each of the script's later fits that trace anew (the script as written's first trial counted them), each at
    its own process's figure; never below 0."""
    n, once = int(default.detail.get("retraces") or 0), process_once(cand, default)
    mine, theirs = refit_s(cand), refit_s(default)
    if cand is default or not n or mine is None or theirs is None:
        return once
    return max(0.0, once + n * (mine - theirs))


def _cost(cand, default, once: float) -> str:
    n = int(default.detail.get("retraces") or 0)
    later = (f", and each of its {n} later fit(s) that trace anew ~{refit_s(cand):,.1f} against ~{refit_s(default):,.1f} s"
             if n and once > process_once(cand, default) else "")
    imports = with_tf(cand, default)
    tf = (f"; TensorFlow imported in {imports[0]:,.1f} against {imports[1]:,.1f} s"
          if imports and abs(imports[0] - imports[1]) >= 0.05 else "")
    return (f"its start costs ~{once:,.1f} s more (its step compiled: {start_s(cand) or 0.0:,.1f} against "
            f"{start_s(default) or 0.0:,.1f} s{tf}{later})")


def unpaid(cand, default, training_s: float | None) -> str | None:
    """Why ``cand`` is not worth its process (its extra compile, at its start and at each later fit that traces anew,
    costs a run more than its faster epochs save over the script's training as written, ``training_s``), or None (no
    figure says so)."""
    once = once_s(cand, default)
    if not once or not training_s or not cand.median or not default.median:
        return None
    saved = training_s * (1 - default.median / cand.median)
    if saved > once + margin(training_s):
        return None
    return (f"its epochs ran {cand.median / default.median:.2f}x, but {_cost(cand, default, once)}, and its gain "
            f"saves only ~{max(0.0, saved):,.1f} s of the script's ~{training_s:,.0f} s of training"
            f"{_short(saved, once)}")


def _short(saved: float, once: float) -> str:
    """Where the saving outweighs the compile but not by the gain a choice needs: says so."""
    return (f", ~{saved - once:,.1f} s net: less than the {MIN_GAIN:.0%} of the run a choice needs"
            if saved > once else "")


#: another pass of trial processes is spent on a rival only where its gain, at its best, repays that pass's tuning
#: within this many runs: census_lookup (~4 s of training) measured '1 intra-op thread' (1.15-1.21x, rounds spread
#: 28%) and the script as written in 3 processes each, 109-129 s tunes where its others took 57-67 s, for at most
#: ~0.7 s a run
REPAY_RUNS = 10


def best_saving(cand, default, training_s: float | None) -> tuple[float, float] | None:
    """(its fastest round against the script as written's slowest, the seconds of ``training_s`` that saves), or None
    where a figure is missing."""
    if not training_s or not cand.runs or not default.runs or min(default.runs) <= 0:
        return None
    best = max(cand.runs) / min(default.runs)
    return best, (training_s * (1 - 1 / best) if best > 1 else 0.0)


def not_worth_a_pass(cand, default, training_s: float | None, pass_s: float) -> str | None:
    """Why another pass of trial processes (``pass_s``: the rival's process and one of the script as written) is not
    spent on ``cand``, or None: even at its fastest round against the script as written's slowest, what it would save
    of the script's training a run repays the pass in more than REPAY_RUNS runs. For rivals not yet ahead beyond the
    noise: one that is goes on (its next process may be the in-process stage's own)."""
    got = best_saving(cand, default, training_s)
    if got is None or pass_s <= 0 or got[1] * REPAY_RUNS >= pass_s:
        return None
    best, saved = got
    runs = f"about {pass_s / saved:,.0f} runs" if saved > 0 else "no number of runs"
    return (f"even at its fastest round against the script as written's slowest ({best:.2f}x) it would save "
            f"~{saved:,.1f} s of the script's ~{training_s:,.0f} s of training a run, so another pass to decide it "
            f"(~{pass_s:,.0f} s of tuning) would take {runs} to repay (more than {REPAY_RUNS}): not measured again")


def cannot_pay(cand, default, training_s: float | None) -> str | None:
    """Why no further process of ``cand`` can make it worth its process, or None: even at its fastest round against the
    script as written's slowest, its gain saves less of the script's training as written (``training_s``) than its
    compile costs beyond the script as written's (once_s). Asked after each of its processes (tuning.passes; there
    only of processes that ran on the machine as it was, since a busy one can run slow as a whole): imbalanced_mlp's
    JAX, 1.12x with rounds at 81.1-85.2 against 76.1, took a second process and one more of the script as written
    (17 s of an 80-s tune) to be dropped for a start 1.9 s dearer against ~4 s of training."""
    once, got = once_s(cand, default), best_saving(cand, default, training_s)
    if not once or got is None:
        return None
    best, saved = got
    if best <= 1 or saved >= once + margin(training_s):
        return None
    return (f"even at its fastest round against the script as written's slowest ({best:.2f}x) its gain would save "
            f"~{saved:,.1f} s of the script's ~{training_s:,.0f} s of training, and {_cost(cand, default, once)}"
            f"{_short(saved, once)}: not measured again")


def drop_unpaid(cand, default, training_s: float | None) -> bool:
    """True, with ``cand.dropped`` set to why, where ``cand`` would be chosen over the script as written on its epochs
    (choose.better) but unpaid() says its start costs more than it saves, or where cannot_pay() dropped it already."""
    from .choose import better

    if cand.detail.get("unpaid"):  # dropped so already, between its processes (tuning.passes)
        return True
    why = better(cand, default) and unpaid(cand, default, training_s)
    if why:
        cand.dropped = f"not worth its process: {why}"
    return bool(why)


def unpaid_at_end(cand, default, ending: dict, ref: dict, training_s: float | None) -> str | None:
    """After a completion trial: why ``cand`` is not worth its process once TensorFlow's import is counted where the
    whole script (``ending`` under it, ``ref`` as written) imported it after the measured fit, or None. A JAX
    candidate credited with a run that never imports TensorFlow loses that credit where the script saves a model, or
    calls tf.* code, after training."""
    ended(cand, ending)
    ended(default, ref)
    why = unpaid(cand, default, training_s)
    return f"not worth its process: {why}" if why else None


__all__ = ["REPAY_RUNS", "best_saving", "cannot_pay", "drop_unpaid", "ended", "not_worth_a_pass", "once_s", "process_once",
           "refit_s", "start_s", "tf_s", "unpaid", "unpaid_at_end", "with_tf"]

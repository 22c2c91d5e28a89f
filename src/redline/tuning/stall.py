"""The epoch-start wait `python script.py` pays on TensorFlow and `redline run` does not: in the prediction.

Keras makes a new tf.data iterator at each epoch of a finite input and drops the last one there. The iterator's
destructor cancels tf.data's autotune thread and waits for it to end. That thread sleeps until its next optimisation
(10 ms after the iterator starts, then at periods doubling up to a minute: 10, 30, 70, ... 1270, 2550, 5110 ms).
Cancelling wakes it, but where it looks before the cancellation is complete it sleeps again until that next
optimisation, and the destructor waits that long: 0 to a whole epoch. Measured on a 2-core Zen 4 VM (mnist_convnet's
2.6-3.6 s epochs, `python`): in 3-5 of 10-11 later epochs, each wait ending within 30 ms of 2,550 or 5,110 ms after
the iterator started.

redline takes that wait off the loop (applying.iterator_release), in every trial on TensorFlow, so the trials read
epochs without it, and `python` pays it. Where the script's epochs are short, each process of the script as written
times a few of them as `python` runs them (timed_factor); elsewhere the expected wait is modelled from the trials' own
drops (every TensorFlow process of the tune, the in-process stage's included: the race is tf.data's, the model
trained the same): the share of iterators that waited for their thread's next optimisation (``lost_share``), times
how long that is from an epoch's length (``expected_wait``). Pure: figures in, figures out.
"""

from __future__ import annotations

FIRST_MS, CAP_MS = 10, 60_000  # autotune's first period and its cap
MIN_GAP_S = 0.1  # drops whose next optimisation was nearer than this tell too little to count
MIN_DROPS = 4  # fewer counted drops than this: no share
JITTER = 0.08  # an epoch's length varies about this much either way between epochs (this VM: 2.5-3.6 s)
#: the share starts from PRIOR_SHARE as if PRIOR_DROPS drops had been counted: a share read from a handful of drops
#: swings the prediction by a fifth (fine_tune, epochs of ~1.6 s, four tunes on a 2-core Zen 4: 0 of 4, 1 of 5, 2 of 5
#: and 2 of 16 waited, an epoch start's expected wait 0.00 to 0.37 s). Measured on that VM: 9 of 33 epoch starts of
#: imbalanced_mlp under `python` waited, 3-5 of 10-11 of mnist_convnet's, 9 of 74 of thread_lines' trial drops.
#: Tens of drops outweigh it.
PRIOR_SHARE, PRIOR_DROPS = 0.25, 8
#: `python`'s epoch starts timed (timed_factor) start from TIMED_PRIOR_SHARE as if TIMED_PRIOR_EPOCHS epochs had been
#: timed, each waiting what expected_wait gives at that share: long epochs are timed twice, and each start waits a
#: whole autotune period or nothing (vit_classifier, ~6-s epochs on a 2-core Emerald Rapids VM: both timed starts
#: waited, 4.65 s on average, so tune predicted 1.77x where `run` delivered 1.52x; 10 of 15 waited in a longer count).
#: The shares of `python`'s epoch starts that waited, measured on these VMs: 27% (imbalanced_mlp), 30-45%
#: (mnist_convnet), 50-65% (anomaly_autoencoder), 67% (vit_classifier).
TIMED_PRIOR_SHARE, TIMED_PRIOR_EPOCHS = 0.45, 2


def next_wake(life_s: float) -> float:
    """Seconds from an iterator's start to its autotune thread's first optimisation after ``life_s``."""
    t, period = FIRST_MS, FIRST_MS
    while t <= life_s * 1000:
        period = min(2 * period, CAP_MS)
        t += period
    return t / 1000


def lost_share(drops) -> dict | None:
    """{"share", "lost", "drops", "from"}: of released iterators (``[seconds lived, seconds the destructor waited,
    kind]``, from iterator_release.stats()) whose next optimisation was at least MIN_GAP_S away, those that waited at
    least half of that gap (``lost``; the rest return in milliseconds), and the share that makes from PRIOR_SHARE over
    PRIOR_DROPS. The epochs' own iterators, dropped after their data's end as `python` drops them, where MIN_DROPS of
    them count; else every one, those of fits cut short (tune's measurements) included, which lose the race more often
    (mnist_convnet: 5 of 7 against 3-5 of 10-11 epoch starts under `python`). None with fewer than MIN_DROPS."""
    def counted(rows):
        return [(d[0], d[1]) for d in rows if next_wake(d[0]) - d[0] >= MIN_GAP_S]

    own = counted([d for d in drops if len(d) > 2 and d[2] == "epoch"])
    rows, basis = (own, "epoch ends") if len(own) >= MIN_DROPS else (counted(drops), "epoch ends and fits cut short")
    if len(rows) < MIN_DROPS:
        return None
    lost = sum(1 for life, wait in rows if wait >= 0.5 * (next_wake(life) - life))
    return {"share": (lost + PRIOR_SHARE * PRIOR_DROPS) / (len(rows) + PRIOR_DROPS), "lost": lost, "drops": len(rows),
            "from": basis}


def expected_wait(epoch_s: float, share: float, jitter: float = JITTER, points: int = 41) -> float:
    """Seconds an epoch start waits on average where an epoch lasts about ``epoch_s`` (within ``jitter`` of it either
    way, evenly) and ``share`` of drops wait for the next optimisation."""
    lows, span = epoch_s * (1 - jitter), 2 * jitter * epoch_s
    lengths = [lows + span * i / (points - 1) for i in range(points)]
    return share * sum(next_wake(x) - x for x in lengths) / points


def python_factor(epoch_s: float | None, drops, each_epoch: bool) -> dict | None:
    """How much longer `python`'s epochs are than the trials' (which ran with the release), where the script's epochs
    each make an iterator (``each_epoch``: no steps_per_epoch of its own) that the release took (``drops`` from its
    processes): {"factor", "wait_s", "share", "lost", "drops", "from", "epoch_s"}; None where nothing says so."""
    if not epoch_s or not each_epoch or not drops:
        return None
    share = lost_share(drops)
    if share is None:
        return None
    wait = expected_wait(epoch_s, share["share"])
    return {"factor": round((epoch_s + wait) / epoch_s, 4), "wait_s": round(wait, 3), "share": round(share["share"], 3),
            "lost": share["lost"], "drops": share["drops"], "from": share["from"], "epoch_s": round(epoch_s, 3)}


def timed_factor(epoch_s: float | None, probes) -> dict | None:
    """As python_factor(), from `python`'s epoch starts timed (tuning.as_run.python_drops: ``probes``, one per process
    of the script as written, each {"epochs", "waits_s"}) rather than modelled: the release thread's drops do not meet
    the wait as `python` does (an autoencoder's 0.4-s epochs with validation on a 2-core Zen 4 VM: 20-29% of them
    waited there, 50-65% of `python`'s epoch starts, 0.02 s an epoch modelled against 0.11-0.14 s under `python`).
    The mean starts from TIMED_PRIOR_SHARE over TIMED_PRIOR_EPOCHS. {"factor", "wait_s", "epochs", "processes", "from":
    "timed", "epoch_s"}; None with no epoch timed."""
    probes = [p for p in probes or [] if p.get("epochs")]
    epochs = sum(p["epochs"] for p in probes)
    if not epoch_s or not epochs:
        return None
    prior = TIMED_PRIOR_EPOCHS * expected_wait(epoch_s, TIMED_PRIOR_SHARE)
    wait = (sum(sum(p.get("waits_s") or []) for p in probes) + prior) / (epochs + TIMED_PRIOR_EPOCHS)
    return {"factor": round((epoch_s + wait) / epoch_s, 4), "wait_s": round(wait, 3), "epochs": epochs,
            "processes": len(probes), "from": "timed", "epoch_s": round(epoch_s, 3)}


__all__ = ["PRIOR_DROPS", "PRIOR_SHARE", "TIMED_PRIOR_EPOCHS", "TIMED_PRIOR_SHARE", "expected_wait", "lost_share", "next_wake", "python_factor", "timed_factor"]

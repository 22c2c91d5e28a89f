"""The inputs one fit is measured on: the script's own (as written) and the rewrites that fit this kind of input
(redline.data.rewrite), each as fit is fed it, and what Keras trains on under ``validation_split``."""

from __future__ import annotations

from typing import NamedTuple

from .steps import steps_in_epoch
from .tails import KERAS_BATCH


class Feed(NamedTuple):
    """An input for fit: as written, or a rewrite of it."""

    x: object
    y: object
    batch_size: int | None  # for fit: arrays take one, datasets come batched
    kwargs: dict  # more fit arguments carried over (shuffle, class_weight, sample_weight)
    cap: int | None  # steps in an epoch (None: unknown or endless without the script's steps_per_epoch)
    scale: float  # samples per step against the script's own batch
    endless: bool  # the data repeats and fit is given steps_per_epoch=cap: every execution runs in full
    validation: dict | None = None  # fit arguments for whole epochs only: the validation a rewrite carries itself


def script_input(fit_args: dict) -> tuple:
    """What the script's fit call trains on: (x, y, batch_size, kind, extra fit arguments, steps an epoch, endless).
    Arrays get Keras' own default batch (32) and, under ``validation_split``, the part Keras trains on; ``endless``:
    the script's own steps_per_epoch over endless data, or over a part of finite data (Keras carries one iterator
    across its epochs, and every execution runs its full steps: steps_per_execution must divide them)."""
    from ..data.rewrite import input_kind, training_part

    x, y = fit_args.get("x"), fit_args.get("y")
    batch_size = fit_args.get("batch_size")
    if batch_size is None and y is not None or (batch_size is None and hasattr(x, "__array__")):
        batch_size = KERAS_BATCH  # Keras' own default for arrays
    kind = input_kind(x)
    extra = {k: v for k, v in fit_args.items() if k in ("shuffle", "class_weight", "sample_weight") and v is not None}
    split = fit_args.get("validation_split")
    if split and kind == "arrays":  # Keras trains on the arrays' first part: so do the measurements in steps
        x, y, sw = training_part((x, y, fit_args.get("sample_weight")), split)
        if sw is not None:
            extra["sample_weight"] = sw
    own_steps = fit_args.get("steps_per_epoch")
    # data of unknown cardinality is counted only where the script's epochs end at its end (no steps_per_epoch)
    steps_epoch = steps_in_epoch(x, y, batch_size, **({"count_s": 0} if own_steps else {}))
    endless = False
    if own_steps and (steps_epoch is None or int(own_steps) < steps_epoch):
        steps_epoch, endless = int(own_steps), True
    return x, y, batch_size, kind, extra, steps_epoch, endless


def fastest_input(inputs: dict, specs: dict) -> tuple[dict, str]:
    """(``inputs`` in the order measured, the chosen input's name): the fastest of the rewrites (``specs``: name ->
    spec, written into each record) that beat the input as written beyond the spread, else "as written"."""
    from .compare import beats, median

    order = ["as written", *specs]  # as measured, whatever was dropped when
    inputs = {n: inputs[n] for n in sorted(inputs, key=lambda n: order.index(n) if n in order else len(order))}
    base, chosen = inputs.get("as written", {}).get("steps_per_s"), "as written"
    for name in specs:
        rec = inputs.setdefault(name, {})
        rec["spec"] = specs[name]
        runs = rec.get("steps_per_s")
        if beats(runs, base) and (chosen == "as written" or median(runs) > median(inputs[chosen]["steps_per_s"])):
            chosen = name
    return inputs, chosen


def feeds_for(inputs: dict | None, kind: str, x, y, batch_size, fit_args: dict, extra: dict, steps_epoch, endless: bool,
              out: dict) -> tuple[dict, dict]:
    """({name: Feed}, {name: rewrite spec}): the input as written, and, where ``inputs`` asks for them (its "allow" and
    "usable"), the rewrites that apply to this fit call; the ones that do not, and why, go into ``out``."""
    from ..data.rewrite import Unsupported, input_kind, rewrite
    from ..data.rewrite import candidates as input_candidates

    bs = batch_size if kind == "arrays" else None  # arrays take a batch size; datasets come batched
    feeds = {"as written": Feed(x, y, bs, extra, steps_epoch, 1.0, endless)}
    specs = {}
    if inputs is not None:
        wanted, skipped = input_candidates(kind, inputs.get("allow", ()), int(inputs.get("usable", 1)))
        out.setdefault("not_candidates", []).extend(skipped)  # decided without measuring: no such rewrite applies
        # under validation_split, a rewrite cuts the arrays as Keras does (x and y here are already its training part)
        source = (fit_args.get("x"), fit_args.get("y")) if kind == "arrays" and fit_args.get("validation_split") else (x, y)
        for name, spec in wanted.items():
            try:
                xi, yi, bsi, more = rewrite(spec, *source, batch_size, fit_args)
            except Unsupported as why:
                out["inputs"][name] = {"error": f"not applicable: {why}", "spec": spec}
                continue
            kw = {k: v for k, v in extra.items() if k != "shuffle" or input_kind(xi) == "arrays"}  # datasets ignore shuffle
            cap = more.get("steps_per_epoch") or (steps_in_epoch(xi, yi, bsi) if spec["input"] == "batch" else steps_epoch)
            feeds[name] = Feed(xi, yi, bsi, kw, cap, float(spec.get("factor", 1)),
                               bool(more.get("steps_per_epoch")) or (endless and spec["input"] != "batch"),
                               {k: v for k, v in more.items() if k.startswith("validation")})
            specs[name] = spec
    return feeds, specs


def last_batch(feed: Feed):
    """(x, y, fit kwargs) of an epoch's last batch where it is smaller than the others (arrays whose length the batch
    size does not divide), else None. A backend compiles its step again for that shape the first time it comes (JAX:
    1.85 s for imbalanced_mlp's MLP on a 2-core VM, whose steps take 0.03 s), so the first run to reach it would read
    that compile as slow steps."""
    import keras

    from ..data.rewrite import input_kind

    if feed.endless or not feed.batch_size or input_kind(feed.x) != "arrays":
        return None
    leaves = [a for a in keras.tree.flatten(feed.x) if a is not None]
    n = len(leaves[0]) if leaves else 0
    r = n % feed.batch_size
    if n <= feed.batch_size or not r:
        return None
    cut = lambda s: keras.tree.map_structure(lambda a: None if a is None else a[n - r:], s)  # noqa: E731
    return cut(feed.x), None if feed.y is None else cut(feed.y), {k: cut(v) if k == "sample_weight" else v
                                                                  for k, v in feed.kwargs.items()}


def best_median(found: dict, rounds: int) -> float:
    """The best median steps/s among the candidates in ``found`` measured in all ``rounds`` rounds; 0 where none was."""
    from .compare import median

    return max((median(r["steps_per_s"]) for r in found.values() if len(r.get("steps_per_s", [])) >= rounds), default=0.0)


def rewrite_best(on_rewrite: dict, rounds: int) -> float:
    """The rewrite's figure the input as written must beat: its best median of a candidate measured every round; where
    none was (its rivals all dropped in their calibration, so its own compile's calibration is its one figure), the
    best figure of a candidate not dropped. The rewrite already beat the input as written over the input rounds."""
    from .compare import median

    return best_median(on_rewrite, rounds) or max(
        (median(r["steps_per_s"]) for r in on_rewrite.values() if r.get("steps_per_s") and not r.get("dropped")),
        default=0.0)


def prefer_as_written(on_rewrite: dict, on_written: dict, rounds: int) -> bool:
    """After the knob search ran on a repeated rewrite and on the input as written: True where the input as written,
    with its best knobs measured every round, ran faster than the rewrite (rewrite_best). The TF tutorial on
    imbalanced data: the rewrite's one figure, 66.9 steps/s, counted as 0 against 16.2 as written, and the input as
    written stood where the rewrite ran its epochs 3.4x faster."""
    return best_median(on_written, rounds) > rewrite_best(on_rewrite, rounds)


def written_note(rewrite: str, on_rewrite: dict, on_written: dict, rounds: int) -> str:
    """Why the input as written stands where ``rewrite`` beat it at the script's own compile (prefer_as_written): the
    two best medians; where no candidate ran every round on the rewrite (a prime count of batches admits no step above
    1 on a repeated pipeline, and jit was cut), its best figure of any (not "0.0 steps/s")."""
    theirs = best_median(on_rewrite, rounds)
    return (f"{rewrite} beat the input as written at the script's own compile arguments, but the input as written with "
            f"its best steps_per_execution ran faster ({best_median(on_written, rounds):,.1f} against "
            + (f"{theirs:,.1f} steps/s)" if theirs else f"{best_median(on_rewrite, 1):,.1f} steps/s at most on the "
               "rewrite, where no candidate ran every round)"))


def rewrite_only(on_rewrite: dict, on_written: dict, rewrite: str, rounds: int) -> dict:
    """Where the input as written won (prefer_as_written): the knob candidates measured on the repeated rewrite
    ``rewrite`` and not again on the input as written (jit, the ladder's other steps), each dropped with what it read
    there, so that none shows as unmeasured (thread_lines: jit read "not measured: the budget ran out" in a tune that
    used 66 s of 180). Their figures stay in the reason, not in ``steps_per_s``: measured on another input, they are
    not contenders on this one."""
    from .compare import median

    best, out = best_median(on_written, rounds), {}
    for name, r in on_rewrite.items():
        if name in on_written:
            continue
        runs = r.get("steps_per_s") or []
        there = (r.get("error") or r.get("dropped") or
                 (f"{median(runs):,.1f} steps/s there in {len(runs)} round(s)" if runs else "not measured there"))
        out[name] = {**({"knobs": r["knobs"]} if "knobs" in r else {}),
                     "dropped": f"measured on the rewrite {rewrite!r} only ({there}); the input as written with its "
                                f"best steps_per_execution ran faster ({best:,.1f} steps/s): not measured on it"}
    return out


def input_cannot_matter(feed: Feed, kind: str, train: float | None, run_steps: int | None, log,
                        backend: str = "tensorflow") -> str | None:
    """tuning.input_bound.cannot_matter for the input as written, read alone here, on ``backend``; None where it was
    not read."""
    from ..errors import UsageError
    from . import input_bound

    if not (train and run_steps):
        return None
    try:
        got = input_bound.alone(feed.x, feed.y, feed.batch_size, kind)
    except (UsageError, ValueError, TypeError) as exc:  # not readable alone: the rewrites are measured
        log(f"  the input alone not read: {type(exc).__name__}: {str(exc)[:120]}")
        return None
    return input_bound.cannot_matter(got, train, run_steps, feed.cap, input_bound.stall_free(kind, backend)
                                     or input_bound.stall_released(_released(feed, kind, backend), got, feed.cap))


def _released(feed: Feed, kind: str, backend: str) -> bool:
    """The input's finished iterators go to the release thread here (applying.iterator_release): TensorFlow, the
    release installed, numpy arrays (Keras' own tf.data pipeline) or a tf.data dataset not left to Keras."""
    from ..applying import iterator_release

    if backend != "tensorflow" or not iterator_release.installed():
        return False
    return kind == "arrays" or (kind == "dataset" and not iterator_release.left_to_keras(feed.x))


__all__ = ["Feed", "best_median", "fastest_input", "feeds_for", "input_cannot_matter", "last_batch", "prefer_as_written",
           "rewrite_only", "script_input"]

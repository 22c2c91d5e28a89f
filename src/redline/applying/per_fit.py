"""Each fit's own compile knobs, where tune measured them apart: a script whose fits differ (a frozen base for a few
epochs, then the whole model for more) gets, at each ``fit``, the steps_per_execution / jit_compile tuned for that
fit, recognised by its fingerprint (what one training step costs depends on).

The knobs are set on the compiled model just before its fit (its optimizer, loss and metrics stay), and only those
the script does not pass to ``Model.compile`` itself: its own arguments always win. A fit tune did not measure apart
keeps what ``Model.compile`` gave it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys

from .compile_defaults import compile_owner

KNOBS = ("steps_per_execution", "jit_compile")
_MARK = "__redline_per_fit__"


def fingerprint(model, compile_call, kind: str, batch_size) -> str:
    """What one training step of this fit costs depends on (sha256, 16 hex digits): the model's class, weights and
    which of them train, the compile arguments as the script passed them, the input's kind and the batch size."""
    args, kwargs = compile_call or ((), {})
    described = {k: (type(v).__name__ if not isinstance(v, (str, int, float, bool, type(None))) else v)
                 for k, v in sorted(kwargs.items())}
    parts = {"model": type(model).__name__, "weights": [list(map(int, w.shape)) for w in model.weights],
             "trainable": len(model.trainable_weights), "compile": [[type(a).__name__ for a in args], described],
             "input": kind, "batch_size": batch_size}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def knobs_for(own: dict, chosen: dict, keras_defaults: dict) -> dict:
    """The knobs a fit runs with: ``chosen`` (tuned for it), except where the script passed its own (``own``); the
    others back to Keras' defaults, whatever a compile default for another fit gave them."""
    return {k: own[k] if k in own else chosen.get(k, keras_defaults[k]) for k in KNOBS}


def install(per_fit: dict, kind, *, log=None, known=(), kept=()) -> None:
    """Patch keras.Model.compile (to record the script's own arguments) and keras.Model.fit (to set each fit's knobs).
    ``per_fit``: fingerprint -> knobs; ``kind(x)``: the input's kind as tune named it. ``known``: the fingerprints of
    the fits the tune saw (none: not checked); a fit with another (a model built from a data file that changed, an
    edit tune could not see) runs with its own compile arguments, and the first says so, naming what of the choice
    was applied before the script started and stays (``kept``)."""
    keras = sys.modules["keras"]
    log = log or (lambda msg: print(msg, file=sys.stderr))
    owner, holder = keras.Model, compile_owner(keras.Model)  # compile patched where Keras defines it (compile_owner)
    compile_, fit = vars(holder)["compile"], owner.fit
    calls, warned = {}, []
    names = ("x", "y", "batch_size")

    @functools.wraps(compile_, updated=())  # not the marks of a compile_defaults patch under it
    def compile(self, *args, **kwargs):
        calls[id(self)] = (args, dict(kwargs))
        return compile_(self, *args, **kwargs)

    @functools.wraps(fit)
    def fit_(self, *args, **kwargs):
        kw = {**dict(zip(names, args)), **kwargs}
        x = kw.get("x")
        k = kind(x)
        bs = kw.get("batch_size") or (32 if k == "arrays" else None)
        fp = fingerprint(self, calls.get(id(self)), k, bs)
        chosen, unseen = per_fit.get(fp), bool(known) and fp not in known
        if unseen:  # not a fit tune measured: the script's own compile, as written
            chosen = {}
            if not warned:
                warned.append(fp)
                log(f"redline: this fit of {type(self).__name__} is not one `redline tune` saw (its model, compile "
                    "arguments, input or batch size differ): it runs with its own compile arguments"
                    + (f"; {', '.join(kept)}, set before the script started, stays" if kept else "")
                    + "; run `redline tune` again to tune it")
        if chosen is not None:
            own = {n: v for n, v in calls.get(id(self), ((), {}))[1].items() if n in KNOBS}
            auto = getattr(self, "_resolve_auto_jit_compile", lambda: False)()  # Keras' jit_compile="auto"
            want = knobs_for(own, chosen, {"steps_per_execution": 1, "jit_compile": auto})
            now = {"steps_per_execution": self.steps_per_execution, "jit_compile": self.jit_compile}
            if want != now:
                for n, v in want.items():
                    setattr(self, n, v)
                self.train_function = self.test_function = self.predict_function = None  # built again under them
                if not unseen:  # (an unseen fit's line said it above)
                    log(f"redline: this fit of {type(self).__name__} runs with "
                        + ", ".join(f"{n}={v!r}" for n, v in want.items() if now[n] != v) + " (tuned for it)")
        return fit(self, *args, **kwargs)

    setattr(fit_, _MARK, True)
    holder.compile, owner.fit = compile, fit_


__all__ = ["KNOBS", "fingerprint", "install", "knobs_for"]

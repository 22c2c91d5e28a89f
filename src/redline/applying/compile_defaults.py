"""Defaults for Model.compile arguments, patched in visibly and reversibly.

Some settings (steps_per_execution, jit_compile) exist only as arguments of
``Model.compile``. Like autologging tools, redline wraps ``keras.Model.compile``
so that a call which does not pass them gets the plan's value, logs one line
saying so, and ``uninstall()`` puts the original back. An argument the script
passes itself always wins.
"""

from __future__ import annotations

import functools
import inspect
import sys

_MARK = "__redline_original__"


def compile_owner(model=None):
    """The class that defines Model.compile (Keras' Trainer), for ``model`` (a Model class; default: the imported
    keras' Model), or None. Patching compile there, not on keras.Model, keeps Keras' check in model loading
    (``cls.compile != Trainer.compile``: "compile() was not called as part of model loading because the model's
    compile() method is custom") true to form: a patch on keras.Model left every loaded model uncompiled."""
    model = model if model is not None else getattr(sys.modules.get("keras"), "Model", None)
    for cls in getattr(model, "__mro__", ()):
        if "compile" in vars(cls):
            return cls
    return None


def installed() -> dict | None:
    """The defaults currently patched in, or None; found under another wrapper of compile too (per_fit's, which
    `redline run` puts over them)."""
    owner = compile_owner()
    fn = vars(owner)["compile"] if owner else None
    while fn is not None:
        if hasattr(fn, "__redline_defaults__"):
            return fn.__redline_defaults__
        fn = getattr(fn, "__wrapped__", None)
    return None


def install(defaults: dict, *, log=None) -> dict:
    """Patch Model.compile so that missing arguments take ``defaults``. Returns them."""
    import keras  # noqa: F401  (makes compile_owner() find the class)

    uninstall()
    owner = compile_owner()
    original = vars(owner)["compile"]
    signature = inspect.signature(original)
    unknown = set(defaults) - set(signature.parameters)
    if unknown:
        raise TypeError(f"Model.compile has no argument(s) {', '.join(sorted(unknown))}")
    log = log or (lambda msg: print(msg, file=sys.stderr))

    @functools.wraps(original)
    def compile(self, *args, **kwargs):
        bound = signature.bind_partial(self, *args, **kwargs)
        added = {k: v for k, v in defaults.items() if k not in bound.arguments}
        if added:
            shown = ", ".join(f"{k}={v!r}" for k, v in added.items())
            log(f"redline: {type(self).__name__}.compile({shown}) set by redline; pass it to compile() to override")
        return original(self, *args, **{**kwargs, **added})

    setattr(compile, _MARK, original)
    compile.__redline_defaults__ = dict(defaults)
    owner.compile = compile
    _patched.update(defaults=dict(defaults), log=log)
    if not _patched.get("follows"):  # keras.config.set_backend imports keras anew, a new Model with it: patched too
        from .after_import import when_imported

        _patched["follows"] = True
        when_imported("keras", _follow)
    return dict(defaults)


#: what install() patched in last (None after uninstall()), for a keras imported anew
_patched: dict = {}


def _follow(keras) -> None:
    if _patched.get("defaults") is not None and installed() is None:
        install(_patched["defaults"], log=_patched["log"])


def uninstall() -> bool:
    """Restore the original Model.compile. True if a patch was removed."""
    owner = compile_owner()
    original = getattr(vars(owner)["compile"], _MARK, None) if owner else None
    if original is None:
        return False
    owner.compile = original
    _patched["defaults"] = None
    return True

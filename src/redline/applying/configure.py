"""configure(): the one place where redline changes the runtime."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from dataclasses import dataclass, field

from ..detection import detect
from ..detection.runtime import missing_packages
from ..detection.snapshot import Snapshot
from ..errors import LateConfigurationError, UsageError
from ..planning import USER, Plan, plan as make_plan
from . import compile_defaults
from .actions import APPLIED, FAILED, KEPT, LATE_FIX, SKIPPED, Action

ON_LATE = ("raise", "warn")
# Variables that only count if set before the named module is imported.
_READ_AT_IMPORT = {"TF_ENABLE_ONEDNN_OPTS": "tensorflow"}


@dataclass(frozen=True)
class AppliedPlan(Plan):
    """A Plan after configure(): what was done, and the strategy scope."""

    actions: tuple = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def failed(self) -> tuple:
        return tuple(a for a in self.actions if a.status == FAILED)

    def __str__(self) -> str:
        """The plan's settings (Plan.__str__), then what configure() did with each it acted on."""
        done = [f"{a.status}: {a.name} = {a.value}" + (f" ({a.detail})" if a.detail else "") for a in self.actions]
        return "\n".join([super().__str__(), *done])

    @property
    def strategy_object(self):
        """The tf.distribute strategy (TensorFlow backend), made on first use."""
        if "strategy" not in self._cache:
            if self.backend.value != "tensorflow":
                self._cache["strategy"] = None
            else:
                from . import tensorflow as tf_apply

                self._cache["strategy"] = tf_apply.strategy(self)
        return self._cache["strategy"]

    def scope(self):
        """Build and compile the model inside this: ``with plan.scope(): model = ...``."""
        strategy = self.strategy_object
        return strategy.scope() if strategy is not None else contextlib.nullcontext()


def require_backend(backend: str, reason: str, needed_by: str | None = None) -> None:
    """UsageError naming the fix when the backend's packages are not installed; before anything imports them."""
    missing = missing_packages(backend)
    if not missing:
        return
    names = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
    hint = "pip install 'redline[cpu]' (or 'redline[gpu]')" if backend == "tensorflow" else f"pip install {' '.join(missing)}"
    if needed_by:
        raise UsageError(f"{needed_by} needs {backend} ({reason}), but {names}: {hint}")
    others = [b for b in ("tensorflow", "jax", "torch") if b != backend and not missing_packages(b)]
    installed = f"installed: {', '.join(others)}" if others else "none of tensorflow, jax, torch is installed"
    raise UsageError(f"Keras is set to the {backend} backend ({reason}), but {names}: {hint}, "
                     f"or set KERAS_BACKEND to a backend that is installed ({installed})")


def _apply_env(plan: Plan, environ) -> list[Action]:
    actions = []
    for var, value in plan.env().items():
        if var in environ and environ[var] != value:
            actions.append(Action(var, environ[var], KEPT, f"{var}={environ[var]} was set after the snapshot; left as it is"))
            continue
        environ[var] = value
        module = _READ_AT_IMPORT.get(var)
        if module and module in sys.modules:
            actions.append(Action(var, value, FAILED, f"{module} reads {var} when imported and is already imported; fix: {LATE_FIX}"))
        else:
            actions.append(Action(var, value, APPLIED, "environment"))
    backend = plan.backend
    if backend.source == USER:
        keras = sys.modules.get("keras")
        if keras is not None and keras.backend.backend() != backend.value:
            actions.append(Action("backend", backend.value, FAILED,
                                  f"Keras is already imported with the {keras.backend.backend()} backend; set KERAS_BACKEND before importing keras"))
        elif keras is None:
            environ["KERAS_BACKEND"] = backend.value
            actions.append(Action("backend", backend.value, APPLIED, "KERAS_BACKEND"))
    return actions


def _apply_keras(plan: Plan, log) -> list[Action]:
    actions = []
    prec = plan.precision
    if prec.applied:
        import keras

        keras.mixed_precision.set_global_policy(prec.value)
        actions.append(Action("precision", prec.value, APPLIED, "keras.mixed_precision.set_global_policy"))
    else:
        actions.append(Action("precision", prec.value, SKIPPED, "recommendation only; opt in with precision='auto'"))
    if plan.iterator_release.value and plan.iterator_release.applied:
        import keras  # configure() in the user's own process: keras comes up on the plan's backend, set above

        from . import iterator_release

        why_not = iterator_release.install(keras)
        actions.append(Action("iterator_release", True, SKIPPED if why_not else APPLIED,
                              why_not or "Keras' TensorFlow epoch loop patched (redline.applying.iterator_release)"))
    if plan.build_ahead.value and plan.build_ahead.applied:
        import keras

        from . import build_ahead

        why_not = build_ahead.install(keras)
        actions.append(Action("build_ahead", True, SKIPPED if why_not else APPLIED,
                              why_not or "Keras' TensorFlow trainer patched (redline.applying.build_ahead)"))
    knobs = {name: s.value for name, s in (("steps_per_execution", plan.steps_per_execution), ("jit_compile", plan.jit_compile)) if s.applied}
    if knobs:
        compile_defaults.install(knobs, log=log)
        for name, value in knobs.items():
            actions.append(Action(name, value, APPLIED, "default for Model.compile (patched; redline.applying.compile_defaults.uninstall() reverts)"))
    return actions


def configure(
    plan: Plan | None = None,
    *,
    snapshot: Snapshot | None = None,
    on_late: str = "raise",
    environ=None,
    log=None,
    **choices,
) -> AppliedPlan:
    """Apply a plan (made from ``choices`` if not given) to this process.

    Call it before building any tensor or model. Settings the user made are
    kept. If TensorFlow has already started, whatever can still be applied is
    applied and the rest is listed in a LateConfigurationError (``on_late=
    "raise"``) or a RuntimeWarning (``on_late="warn"``), with the fix.
    """
    if on_late not in ON_LATE:
        raise UsageError(f"on_late={on_late!r} is not valid: use 'raise' or 'warn'")
    if plan is not None and (choices or snapshot is not None):
        raise UsageError("configure() takes either a ready plan or choices to make one, not both")
    environ = os.environ if environ is None else environ
    if plan is None:
        snapshot = snapshot if snapshot is not None else detect(environ=environ)
        plan = make_plan(snapshot, **choices)
        gpus = snapshot.gpus.visible
    else:
        gpus = detect(environ=environ).gpus.visible if plan.gpu_memory.value not in (None, "growth", "full") else ()

    require_backend(plan.backend.value, plan.backend.reason)
    actions = _apply_env(plan, environ) + _apply_backend(plan, gpus, environ) + _apply_keras(plan, log)
    return _applied(plan, actions, on_late)


def _apply_backend(plan: Plan, gpus, environ) -> list[Action]:
    """The backend's own settings (TensorFlow's tf.config; JAX's variables, read when jax starts; torch's threads)."""
    backend = plan.backend.value
    if backend == "tensorflow":
        from . import tensorflow as tf_apply

        return tf_apply.apply(plan)
    if backend == "jax":
        from .other_backends import apply_jax

        return apply_jax(plan, gpus, environ)
    if backend == "torch":
        from .other_backends import apply_torch

        return apply_torch(plan, gpus)
    return [Action("backend", backend, SKIPPED, f"redline has no runtime settings for the {backend} backend")]


def _applied(plan: Plan, actions: list, on_late: str) -> AppliedPlan:
    applied = AppliedPlan(**{f.name: getattr(plan, f.name) for f in dataclasses.fields(Plan)}, actions=tuple(actions))
    failed = applied.failed()
    if failed:
        lines = "; ".join(f"{a.name}={a.value!r}: {a.detail}" for a in failed)
        message = f"redline could not apply {len(failed)} setting(s) because the runtime had already started: {lines}"
        if on_late == "raise":
            raise LateConfigurationError(message, failed)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return applied


def configure_for_script(plan: Plan, on_applied, *, environ=None, log=None) -> None:
    """configure() for a script about to run, which may pick its backend itself in ways no reading of its source
    finds (a settings module it imports, its arguments). Now: the environment, and JAX's or torch's own settings
    (variables read when jax starts, torch's threads: none imports keras). Once the script imports keras, on the
    backend it chose: TensorFlow's tf.config settings and Keras' (precision, Model.compile defaults); importing them
    now would import keras first, and fix the backend before the script's own line. Where keras comes up on another
    backend than the plan's, those are not applied, and the actions say why. ``on_applied(AppliedPlan)`` is called
    then (late settings warned about, not raised)."""
    environ = os.environ if environ is None else environ
    require_backend(plan.backend.value, plan.backend.reason)
    tensorflow = plan.backend.value == "tensorflow"
    gpus = () if tensorflow or plan.gpu_memory.value in (None, "growth", "full") else detect(environ=environ).gpus.visible
    actions = _apply_env(plan, environ) + ([] if tensorflow else _apply_backend(plan, gpus, environ))
    done = []

    def at_import(keras) -> None:
        if done:  # keras imported anew (keras.config.set_backend): the plan was applied, or not, the first time
            return
        done.append(True)
        running = keras.backend.backend()
        if running != plan.backend.value:
            more = [Action("backend", running, SKIPPED, f"the script runs on {running}, not on the "
                           f"{plan.backend.value} of the plan ({plan.backend.reason}): keras came up on it when the "
                           "script imported it, so none of the plan's settings for that backend apply")]
        else:
            more = (_apply_backend(plan, (), environ) if tensorflow else []) + _apply_keras(plan, log)
        on_applied(_applied(plan, actions + more, "warn"))

    from .after_import import when_imported

    when_imported("keras", at_import)


__all__ = ["AppliedPlan", "configure", "configure_for_script", "require_backend"]

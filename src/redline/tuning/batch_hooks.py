"""The script's callbacks that act on every batch, which ``steps_per_execution`` would change.

Keras calls a callback's batch hooks (``on_train_batch_end``, ``on_batch_end``, ...) once per execution of its
compiled step: under ``steps_per_execution=N`` once every N batches (its documentation of ``compile`` says so). A loss
recorded at each batch end, as the callbacks guide and the FAQ write it, or a learning-rate warm-up set at each batch's
start then sees 1/N of the batches: a script with both, tuned to JAX and spe 128, recorded 48 losses instead of 5,400
and stretched its 500-batch warm-up over 64,000 batches (final loss 0.130 against 0.080). Where the script's fit has
such a callback, a steps_per_execution it does not pass itself is advice, not a choice (tuning/inprocess.py).

Keras' own callbacks count batches themselves where they need to (ModelCheckpoint's and BackupAndRestore's
``save_freq``, TensorBoard's ``update_freq``, the progress bar): a hook counts as the script's where the class that
defines it is not Keras' own, or where it was handed to ``LambdaCallback``.
"""

from __future__ import annotations

HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
         "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")


def callback_list(callbacks) -> list:
    """A fit's ``callbacks`` as Keras reads them: one callback, a list or a tuple (nested ones flattened) or none
    (its CallbackList flattens what it is given; the simple-audio tutorial passes one EarlyStopping bare)."""
    if not callbacks:
        return []
    import keras

    return list(keras.tree.flatten(callbacks))


def _keras_own(cls) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return module == "keras" or module.startswith(("keras.", "redline.", "tf_keras.", "tensorflow."))


def every_batch(callbacks) -> list[str]:
    """"Class.hook" for each batch hook of ``callbacks`` that the script wrote (its own class, or a function given to
    LambdaCallback), in the order given; empty where none."""
    found = []
    for cb in callback_list(callbacks):
        own = vars(cb) if hasattr(cb, "__dict__") else {}
        for hook in HOOKS:
            if callable(own.get(hook)):  # LambdaCallback(on_train_batch_end=...): an attribute of the instance
                found.append(f"{type(cb).__name__}.{hook}")
                continue
            definer = next((c for c in type(cb).__mro__ if hook in vars(c)), None)
            if definer is not None and not _keras_own(definer):
                found.append(f"{type(cb).__name__}.{hook}")
    return found


def advice(found: list, spe: int) -> str:
    """Why a steps_per_execution of ``spe`` is advice where the script's callbacks ``found`` act on every batch."""
    names = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return (f"the script's callbacks act on every batch ({names}): under steps_per_execution={spe} Keras calls them "
            f"once every {spe} batches, so what they record or set each batch would change; pass "
            f"steps_per_execution={spe} to Model.compile yourself where that is fine")


__all__ = ["HOOKS", "advice", "every_batch"]

"""One process of `redline launch`: the user's unchanged script on Keras' JAX backend under a DataParallel distribution.

``python -m redline.launching.worker SCRIPT [ARGS...]`` with the launch settings in REDLINE_LAUNCH (JSON) and the
``KERAS_DISTRIBUTION_*`` variables set by the launcher. Before the script runs: this process is pinned to its CPUs,
``keras.distribution.initialize()`` joins the group (jax.distributed), and a ``DataParallel`` distribution over
every process's devices is installed. ``Model.fit`` is wrapped so that

- numpy arrays are sharded by process: the script's batch size is the global batch, each process takes its
  contiguous slice of every global batch (the same batches, in the same order, as one process would train on);
  tf.data pipelines are sharded by DataParallel itself, the same way;
- only rank 0 shows a progress bar;
- with a checkpoint folder, the model is restored from the last backup when there is one, and rank 0 writes a new
  one after every epoch, atomically (a new file, then a rename of the pointer).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import sys
import traceback

from ..applying.entry import execute, module_for, prepare, print_script_error

ENV = "REDLINE_LAUNCH"
MARK = "REDLINE-LAUNCH "
#: exit codes the launcher reads
EXIT_TF_ONLY = 3
EXIT_SETUP = 4


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the launcher dies, so no worker is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the launcher's own clean-up still stops the group


def _say(kind: str, **fields) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, (MARK + json.dumps({"kind": kind, **fields}) + "\n").encode())


def shard_rows(n: int, batch: int, world: int, rank: int):
    """Row indices of process ``rank``: its contiguous 1/world of every global batch (a remainder batch is left out)."""
    import numpy as np

    per = batch // world
    whole = (n // batch) * batch
    return np.arange(whole).reshape(-1, world, per)[:, rank, :].reshape(-1)


class Backup:
    """Restore from, and (rank 0) write, the last backup in ``directory``; every write is a new file and a rename."""

    POINTER = "latest.json"

    def __init__(self, directory: str, rank: int):
        self.directory, self.rank = directory, rank

    def callback(self):
        import keras

        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                outer.restore(self.model)

            def on_epoch_end(self, epoch, logs=None):
                outer.save(self.model, epoch + 1)

            def on_train_end(self, logs=None):
                outer.finished()

        return _Callback()

    def finished(self) -> None:
        """fit ran to its end: the backup is not needed (as Keras' BackupAndRestore does), so a new run starts afresh."""
        if self.rank == 0:
            for name in os.listdir(self.directory):
                if name == self.POINTER or name.startswith("epoch-"):
                    os.remove(os.path.join(self.directory, name))

    def latest(self) -> dict | None:
        try:
            with open(os.path.join(self.directory, self.POINTER)) as f:
                meta = json.load(f)
        except FileNotFoundError:
            return None
        return meta if os.path.exists(os.path.join(self.directory, meta["weights"])) else None

    def restore(self, model) -> None:
        if self.rank == 0:  # a backup cut short by a dead worker: never read, removed
            for name in os.listdir(self.directory):
                if name.startswith(".partial-"):
                    os.remove(os.path.join(self.directory, name))
        meta = self.latest()
        if meta is None:
            return
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(self.directory, meta["weights"]))
        model._initial_epoch = meta["epoch"]  # Keras' own BackupAndRestore resumes fit the same way
        _say("restored", rank=self.rank, epoch=meta["epoch"])

    def save(self, model, epoch: int) -> None:
        if self.rank != 0:
            # every process takes part in reading the replicated weights (jax collectives); only rank 0 keeps them
            import tempfile

            with tempfile.TemporaryDirectory(prefix="redline-backup-") as scratch:
                model.save_weights(os.path.join(scratch, "discard.weights.h5"))
            return
        name = f"epoch-{epoch}.weights.h5"
        tmp = os.path.join(self.directory, f".partial-{os.getpid()}.weights.h5")
        model.save_weights(tmp)
        os.replace(tmp, os.path.join(self.directory, name))
        ptmp = os.path.join(self.directory, f".partial-{os.getpid()}.json")
        with open(ptmp, "w") as f:
            json.dump({"epoch": epoch, "weights": name}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(ptmp, os.path.join(self.directory, self.POINTER))
        for old in os.listdir(self.directory):
            if old.startswith("epoch-") and old != name:
                os.remove(os.path.join(self.directory, old))
        _say("backup", rank=self.rank, epoch=epoch)


class ShardingError(Exception):
    pass


def install_fit(cfg: dict) -> None:
    import keras

    from ..data.rewrite import input_kind

    rank, world = cfg["rank"], cfg["world"]
    backup = Backup(cfg["checkpoint_dir"], rank) if cfg.get("checkpoint_dir") else None
    owner = keras.Model
    original = owner.fit
    names = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")

    @functools.wraps(original)
    def fit(model, *args, **kwargs):
        kw = {**dict(zip(names, args)), **kwargs}
        x = kw.get("x")
        kind = input_kind(x)
        if cfg.get("global_batch") and kind in ("arrays", "dataset"):
            _accumulate(model, x, kind, kw, int(cfg["global_batch"]), rank)  # before the batch is split below
        if kind == "arrays" and world > 1:
            batch = kw.get("batch_size") or 32
            if batch % world:
                raise ShardingError(f"the global batch of {batch} does not divide by the {world} processes: give fit a "
                                    f"batch_size that is a multiple of {world}")
            if kw.get("validation_split"):
                raise ShardingError("validation_split is not sharded across processes: pass validation_data instead")
            leaves = list(x.values()) if isinstance(x, dict) else [x]
            rows = shard_rows(len(leaves[0]), batch, world, rank)
            take = lambda a: None if a is None else (  # noqa: E731
                {k: v[rows] for k, v in a.items()} if isinstance(a, dict) else
                tuple(v[rows] for v in a) if isinstance(a, (tuple, list)) else a[rows])
            kw.update(x=take(x), y=take(kw.get("y")), batch_size=batch // world)
            if kw.get("sample_weight") is not None:
                kw["sample_weight"] = take(kw["sample_weight"])
            if rank == 0:
                _say("batch", glob=batch, per_process=batch // world, world=world, rows=len(rows) * world,
                     left_out=len(leaves[0]) - len(rows) * world)
        elif kind in ("generator", "pydataset", "other") and world > 1:
            raise ShardingError(f"fit got {kind}: redline launch shards numpy arrays and tf.data pipelines across "
                                "processes; a Python generator or PyDataset would give every process the same batches. "
                                "Wrap it as a tf.data pipeline (redline.data.pipeline(redline.data.generator(fn, ...), ...))")
        if world > 1:  # arrays are sharded here; a tf.data pipeline is sharded (and rebatched to global/world) by DataParallel
            keras.distribution.distribution().auto_shard_dataset = kind == "dataset"
        if rank != 0:
            kw["verbose"] = 0  # one progress bar: rank 0's
        if backup is not None:
            # one callback, a list or a tuple, as Keras' CallbackList reads them
            kw["callbacks"] = [*(keras.tree.flatten(kw["callbacks"]) if kw.get("callbacks") else []), backup.callback()]
        return original(model, **kw)

    owner.fit = fit


def _accumulate(model, x, kind: str, kw: dict, wanted: int, rank: int) -> None:
    """--global-batch: gradients accumulated over wanted / (the script's batch) steps, so each update sees ``wanted``."""
    if kind == "arrays":
        step = kw.get("batch_size") or 32
    else:
        import tensorflow as tf

        dims = [s.shape[0] for s in tf.nest.flatten(x.element_spec)]
        step = dims[0] if dims and dims[0] is not None else None
        if step is None:
            raise ShardingError("--global-batch needs the pipeline's batch size, and its batches have no fixed size: "
                                "batch it with drop_remainder=True, or leave --global-batch out")
    if wanted % step:
        raise ShardingError(f"--global-batch {wanted} is not a multiple of the script's batch of {step} (the batch every "
                            f"step takes across all processes): give a multiple, e.g. --global-batch {step * 4}")
    if wanted // step > 1:
        if model.optimizer is None or model.optimizer.built:
            raise ShardingError("--global-batch accumulates gradients in the optimizer, which is already built here: "
                                "compile the model before its first fit, or leave --global-batch out")
        model.optimizer.gradient_accumulation_steps = wanted // step
    if rank == 0:
        _say("accumulate", glob=wanted, step=step, steps=wanted // step)


def _tf_only(exc: BaseException) -> bool:
    """The script failed inside TensorFlow while Keras ran on JAX: a model that calls tf.* ops itself. Keras filters
    its tracebacks, so the exceptions it was handling (``__context__``, ``__cause__``) are searched too."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if any(f"{os.sep}tensorflow{os.sep}" in f.filename for f in traceback.extract_tb(e.__traceback__)):
            return True
        todo += [e.__context__, e.__cause__]
    return False


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = json.loads(os.environ[ENV])
    _die_with_parent()
    if cfg.get("cpus"):
        os.sched_setaffinity(0, cfg["cpus"])
    script = argv[0]
    try:
        import keras

        from ..applying.seeding import initialize_distribution

        if keras.backend.backend() != "jax":
            raise RuntimeError(f"Keras runs on {keras.backend.backend()}, not jax")
        if cfg["world"] > 1:  # one process alone: no group to join, and a one-device distribution only costs time
            initialize_distribution()  # keras.distribution.initialize(), TensorFlow seeded only once imported
            keras.distribution.set_distribution(keras.distribution.DataParallel())
        install_fit(cfg)
    except Exception as exc:  # joining the group failed: say where, the launcher reports it with the rank
        _say("setup-failed", rank=cfg["rank"], error=f"{type(exc).__name__}: {exc}"[:600])
        return EXIT_SETUP
    module = module_for(script)  # `redline launch -m pkg.train`
    prepare(script, argv[1:], module)
    try:
        execute(script, module)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code:
            return code  # a failing rank ends at once (below), not after jax.distributed's shutdown waits for the others
        raise
    except ShardingError as exc:
        _say("sharding", rank=cfg["rank"], error=str(exc))
        return EXIT_SETUP
    except BaseException as exc:
        print_script_error(exc)
        if _tf_only(exc):
            _say("tf-only", rank=cfg["rank"], error=f"{type(exc).__name__}: {exc}"[:400])
            return EXIT_TF_ONLY
        return 1
    return 0


def _end(code: int) -> None:
    """A failing rank leaves without Python's exit handlers: jax.distributed's shutdown would wait there for every
    other process to shut down too, so the launcher would learn of the failure only when the others finish."""
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(0)


if __name__ == "__main__":
    _end(main())

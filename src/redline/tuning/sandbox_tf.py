"""Inside a trial process: TensorFlow's writers and readers that bypass Python's files, kept in the trial's sandbox
(tuning/sandbox.py): ``tf.summary`` writers (Keras' TensorBoard callback among them), ``tf.saved_model.save``,
``tf.io.write_file`` / ``read_file`` / ``tf.io.gfile.GFile`` and tf.io.gfile's folder and file operations, TFRecord
files and the file readers of tf.data (TFRecord, text lines, CSV, fixed-length records), a tf.data cache on disk
(``Dataset.cache(filename)``), datasets saved, snapshotted and loaded back, ``tf.train.Checkpoint`` files and a
``CheckpointManager``'s folder, file patterns (``tf.io.gfile.glob``, ``tf.data.Dataset.list_files``) matched over what
the script wrote and deleted, and the profilers' traces, TensorFlow's and JAX's (Keras'
``TensorBoard(profile_batch=...)``, ``tf.profiler.experimental``, ``jax.profiler``), written natively under the folder
they are given."""

from __future__ import annotations

import functools
import os
import shutil

from .sandbox import _protected


def install(tf, sb) -> None:
    """TensorFlow's own files kept in the sandbox ``sb`` (tuning/sandbox.py), once the script imports it."""
    def first(fn, writing=True):
        @functools.wraps(fn)
        def inner(path, *args, **kwargs):
            return fn(sb.path(path, writing), *args, **kwargs)
        return inner

    def second(fn, name: str, writing=True):
        """``fn(obj, path, ...)`` with its path (positional, or the keyword ``name``) in the sandbox."""
        @functools.wraps(fn)
        def inner(obj, *args, **kwargs):
            if args:
                args = (sb.path(args[0], writing), *args[1:])
            elif name in kwargs:
                kwargs[name] = sb.path(kwargs[name], writing)
            return fn(obj, *args, **kwargs)
        return inner

    for m in _api_modules(tf, "summary"):
        m.create_file_writer = first(m.create_file_writer)
    for m in _api_modules(tf, "io"):
        m.write_file, m.read_file = first(m.write_file), first(m.read_file, writing=False)
    for m in _api_modules(tf, "saved_model"):
        m.save = second(m.save, "export_dir")
    for m in _api_modules(tf, "io.gfile"):
        m.GFile = _gfile(m.GFile, sb)
        _gfile_ops(m, tf, sb)
    # files written then read back as the tf.data tutorials do (TFRecord, text lines, CSV, fixed-length records): the
    # writer to the shadow, the readers from it
    writer = tf.io.TFRecordWriter
    writer_init = writer.__init__

    @functools.wraps(writer_init)
    def init(self, path, *args, **kwargs):
        return writer_init(self, sb.path(path, True), *args, **kwargs)

    writer.__init__ = init
    for reader in (tf.data.TFRecordDataset, tf.data.TextLineDataset, tf.data.FixedLengthRecordDataset,
                   tf.data.experimental.CsvDataset):
        reader.__init__ = _reading(reader.__init__, sb)
    # file patterns over what the script wrote (tf.data.Dataset.list_files, tf.io.gfile.glob, and the legacy
    # gfile.Glob make_csv_dataset calls): native globs that see neither the shadow nor the deletions; matched here
    # over both, and given on as the files they match
    raw_glob = tf.io.gfile.glob
    for m in _api_modules(tf, "io.gfile"):
        m.glob = _globbing(m.glob, sb)
    from tensorflow.python.platform import gfile as legacy

    legacy_glob = _globbing(legacy.Glob, sb)  # wrapped once, the same function under each name
    for m in {id(m): m for m in [legacy, *_api_modules(tf, "compat.v1.gfile")]}.values():
        m.Glob = legacy_glob
    list_files = tf.data.Dataset.list_files

    @functools.wraps(list_files)
    def listing(file_pattern, *args, **kwargs):
        found = _matches(raw_glob, file_pattern, sb)
        return list_files(file_pattern if found is None else found, *args, **kwargs)

    tf.data.Dataset.list_files = staticmethod(listing)
    # a tf.data cache on disk: its .index and .data-* files (and a lockfile while it is written), by TensorFlow
    cache = tf.data.Dataset.cache

    @functools.wraps(cache)
    def caching(self, filename="", *args, **kwargs):
        if isinstance(filename, (str, bytes, os.PathLike)) and os.fsdecode(os.fspath(filename)):
            filename = sb.path(filename, True)
        return cache(self, filename, *args, **kwargs)

    tf.data.Dataset.cache = caching
    # a dataset saved to disk and loaded back (Dataset.save / load, tf.data.experimental.save / load), or snapshotted
    ds = tf.data.Dataset
    ds.save, ds.snapshot = second(ds.save, "path"), second(ds.snapshot, "path")
    ds.load = staticmethod(first(ds.load, writing=False))
    experimental = tf.data.experimental
    for name, writing in (("save", True), ("load", False)):
        if hasattr(experimental, name):
            setattr(experimental, name, second(getattr(experimental, name), "path") if writing else
                    first(getattr(experimental, name), writing=False))
    _checkpoints(tf, sb, first, second)
    _profiler(tf, sb)


def _profiler(tf, sb) -> None:
    """``tf.profiler.experimental.start(logdir)`` (Keras' TensorBoard callback on TensorFlow calls it, and the
    ``Profile`` context manager through its module's own name) with its folder in the shadow."""
    from tensorflow.python.profiler import profiler_v2

    start = profiler_v2.start

    @functools.wraps(start)
    def starting(logdir, *args, **kwargs):
        return start(sb.path(logdir, True) if logdir else logdir, *args, **kwargs)

    profiler_v2.start = starting
    for m in _api_modules(tf, "profiler.experimental"):
        m.start = starting


def install_jax(jax, sb) -> None:
    """``jax.profiler.start_trace(log_dir)`` (Keras' TensorBoard callback on JAX, and ``jax.profiler.trace`` through
    its module's own name) with its folder in the shadow."""
    import importlib

    own = importlib.import_module("jax._src.profiler")
    start = own.start_trace

    @functools.wraps(start)
    def starting(log_dir, *args, **kwargs):
        return start(sb.path(log_dir, True) if log_dir else log_dir, *args, **kwargs)

    own.start_trace = starting
    jax.profiler.start_trace = starting


def _checkpoints(tf, sb, first, second) -> None:
    """tf.train.Checkpoint's files (save / write, restore / read) and a CheckpointManager's folder, in the shadow; a
    manager's folder the script already has is copied there first, so a script that resumes from it still does."""
    ckpt = tf.train.Checkpoint
    ckpt.save, ckpt.write = second(ckpt.save, "file_prefix"), second(ckpt.write, "file_prefix")
    ckpt.restore, ckpt.read = second(ckpt.restore, "save_path", False), second(ckpt.read, "save_path", False)
    for m in _api_modules(tf, "train"):
        m.latest_checkpoint = first(m.latest_checkpoint, writing=False)
    manager = tf.train.CheckpointManager
    manager_init = manager.__init__

    @functools.wraps(manager_init)
    def init(self, checkpoint, directory, *args, **kwargs):
        shadow = sb.path(directory, True)
        if isinstance(directory, (str, bytes, os.PathLike)) and shadow != directory and not os.path.exists(shadow):
            real = os.path.realpath(os.fsdecode(os.fspath(directory)))
            if os.path.isdir(real) and real not in sb.deleted:
                shutil.copytree(real, shadow, symlinks=True)
        return manager_init(self, checkpoint, shadow, *args, **kwargs)

    manager.__init__ = init


def _matches(glob, patterns, sb) -> list | None:
    """The files ``patterns`` (a pattern or a list of them, as strings) match under a protected folder, its shadow
    and less what the script deleted, the shadow's copy where there is one; None where no pattern is under a
    protected folder, or they are not strings (a tensor)."""
    many = isinstance(patterns, (list, tuple))
    items = list(patterns) if many else [patterns]
    if not items or not all(isinstance(p, (str, bytes, os.PathLike)) for p in items):
        return None
    reals = [os.path.realpath(os.fsdecode(os.fspath(p))) for p in items]
    if not any(sb._inside(r) for r in reals):
        return None
    out = []
    for pattern, real in zip(items, reals):
        if not sb._inside(real):
            out.extend(glob(pattern))
            continue
        for hit in glob(real):
            hit_real = os.path.realpath(os.fsdecode(hit))
            if hit_real not in sb.deleted and not os.path.lexists(sb._shadow(hit_real)):
                out.append(os.fsdecode(hit))
        out.extend(os.fsdecode(h) for h in glob(sb._shadow(real)))
    return sorted(set(out))


def _reading(init, sb):
    """A tf.data file reader's ``__init__(self, filenames, ...)`` with its file names (a name or a list of them, as
    strings) read from the shadow where the script wrote them."""
    @functools.wraps(init)
    def read(self, filenames, *args, **kwargs):
        if isinstance(filenames, (str, bytes, os.PathLike)):
            filenames = sb.path(filenames, False)
        elif isinstance(filenames, (list, tuple)) and all(isinstance(f, (str, bytes, os.PathLike)) for f in filenames):
            filenames = [sb.path(f, False) for f in filenames]
        return init(self, filenames, *args, **kwargs)
    return read


def _globbing(glob, sb):
    @functools.wraps(glob)
    def inner(pattern):
        found = _matches(glob, pattern, sb)
        return glob(pattern) if found is None else found
    return inner


def _gfile_ops(m, tf, sb) -> None:
    """tf.io.gfile's folder and file operations (exists, listdir, makedirs, remove, rmtree, rename, copy, ...) on a
    path under a protected folder: done by Python's own, which the sandbox already keeps in the shadow, with
    TensorFlow's errors (a script that cleared its log folder with ``tf.io.gfile.rmtree``, as TensorBoard guides do,
    deleted the user's logs in every trial). Other paths (gs://, outside the protected folders): TensorFlow's own."""
    def local(*paths) -> bool:
        return all(isinstance(p, (str, bytes, os.PathLike)) and "://" not in os.fsdecode(os.fspath(p))
                   and _protected(p, sb) is not None for p in paths)

    def tf_errors(fn, native, paths=1):
        @functools.wraps(native)
        def inner(*args, **kwargs):
            if not local(*args[:paths]):
                return native(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            except FileNotFoundError as exc:
                raise tf.errors.NotFoundError(None, None, str(exc)) from None
            except FileExistsError as exc:
                raise tf.errors.AlreadyExistsError(None, None, str(exc)) from None
        return inner

    def rename(src, dst, overwrite=False):
        if not overwrite and os.path.exists(dst):
            raise FileExistsError(17, "File exists", os.fsdecode(os.fspath(dst)))
        os.replace(src, dst)

    def copy(src, dst, overwrite=False):
        if not overwrite and os.path.exists(dst):
            raise FileExistsError(17, "File exists", os.fsdecode(os.fspath(dst)))
        shutil.copyfile(src, dst)

    ops = {"exists": (os.path.exists, 1), "isdir": (os.path.isdir, 1), "listdir": (os.listdir, 1),
           "makedirs": (lambda p: os.makedirs(p, exist_ok=True), 1), "mkdir": (os.mkdir, 1), "remove": (os.remove, 1),
           "rmtree": (shutil.rmtree, 1), "walk": (os.walk, 1), "rename": (rename, 2), "copy": (copy, 2)}
    for name, (fn, paths) in ops.items():
        if hasattr(m, name):
            setattr(m, name, tf_errors(fn, getattr(m, name), paths))


def _gfile(gfile, sb):
    return lambda name, mode="r": gfile(sb.path(name, any(c in mode for c in "wa+"), "a" in mode), mode)


def _api_modules(tf, name: str) -> list:
    """Every module object code reaches as ``tf.<name>``: TensorFlow's attribute (``tensorflow._api.v2.summary``) and
    the module ``import tensorflow.summary`` loads from the same file, a second object (Keras' TensorBoard callback
    imports it that way, and its writer went past a patch of the first into the user's folder). Imported here, so a
    later import finds it patched."""
    import importlib

    def attribute():
        return functools.reduce(getattr, name.split("."), tf)

    found = [attribute()]
    try:
        found.append(importlib.import_module(f"tensorflow.{name}"))
    except ImportError:
        pass  # no such module: the attribute is all there is
    found.append(attribute())  # the import may have set the attribute to the module it loaded
    return list({id(m): m for m in found}.values())


__all__ = ["install", "install_jax"]

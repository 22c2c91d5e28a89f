"""Inside a trial process: keep the script's writes off the user's files.

A trial runs the user's unchanged script, and a completion trial runs all of it: whatever it writes, appends, deletes
or renames under the protected folders (the script's folder and the working directory) goes to a shadow copy under a
scratch folder instead, and reads see the shadow where there is one, so the script still finds what it wrote. Covered:
Python's ``open`` and ``os.open``, ``os.remove``/``unlink``/``rename``/``replace``/``mkdir``/
``makedirs``/``rmdir``/``utime``/``chmod``, ``shutil.rmtree``, ``os.stat``/``lstat``, ``os.path.exists``/``isfile``/``isdir``,
``os.listdir``/``walk``/``scandir`` (``glob``, ``pathlib``), and the writers that bypass Python's files: ``h5py.File``
(Keras weights and checkpoints), SQLite databases and the modules that kept their own reference to ``open`` (numpy's
text files, tarfile, bz2: tuning/sandbox_libs.py), TensorFlow's own (tuning/sandbox_tf.py). Trackers run offline or off
(``WANDB_MODE=disabled``, MLflow into the scratch folder). The processes the script starts, and its temporary files:
tuning/sandbox_children.py.
Anything else that writes from native code is not covered;
`redline tune` checks the protected folders afterwards and names any file that changed."""

from __future__ import annotations

import builtins
import functools
import io
import os
import shutil
import stat
import threading

from .sources import SETTINGS

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: set while Sandbox.path works out a path: the calls it makes (os.path.realpath's own os.lstat, the shadow's checks
#: and copies) go to the real functions, not back through the sandbox
_RESOLVING = threading.local()


class Sandbox:
    def __init__(self, scratch: str, protect):
        self.scratch = os.path.realpath(scratch)
        # a folder protects what lies under it; a path ending in "*" (tuning/trials.named_folders: a file the script
        # names right in the temporary folder, "/tmp/checkpoint.weights.h5") every path that begins with it
        self.roots = sorted({os.path.realpath(p) for p in protect if not p.endswith("*")}, key=len, reverse=True)
        self.prefixes = tuple(sorted({os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p[:-1]))
                                      for p in protect if p.endswith("*")}))
        # redline's own folder around the scratch (a diagnose's record, a tune's shared weights), where it lies under a
        # protected folder without holding one (`redline diagnose` run from /tmp): the trial writes there as it is
        own = os.path.dirname(self.scratch)
        self.own = own if not any(r == own or r.startswith(own + os.sep) for r in self.roots) else self.scratch
        self.deleted: set[str] = set()
        self.read: set[str] = set()  # settings files the script read from the protected folders (tuning/sources.py)

    def _inside(self, real: str) -> bool:
        """Under a protected folder, and not under a hidden folder there (caches such as ~/.keras when the working
        directory is the home folder: a download the script makes stays where later trials find it)."""
        if real == self.own or real.startswith(self.own + os.sep):  # the scratch, and redline's folder around it
            return False
        for r in self.roots:
            if real == r or real.startswith(r + os.sep):
                return not any(part.startswith(".") for part in real[len(r):].split(os.sep)[:-1])
        return real.startswith(self.prefixes)

    def _shadow(self, real: str) -> str:
        return self.scratch + real

    def path(self, path, writing: bool, keep: bool = False, strict: bool = False):
        """Where ``path`` really goes: its shadow when writing under a protected folder (a copy of the original first
        where ``keep``: append, update), the shadow when reading a file the script wrote, else the path itself.
        ``strict``: a call that needs the folder to be there (``open``, ``os.mkdir``) fails where it is not, as under
        `python` (a script writing its results into a missing folder after fit "finished" in every trial); writers
        that make their folders (TensorFlow's, TensorBoard's) make them in the shadow."""
        if isinstance(path, int) or not isinstance(path, (str, bytes, os.PathLike)) or getattr(_RESOLVING, "on", False):
            return path
        _RESOLVING.on = True
        try:
            return self._path(path, writing, keep, strict)
        finally:
            _RESOLVING.on = False

    def _path(self, path, writing: bool, keep: bool, strict: bool):
        text = os.fsdecode(os.fspath(path))
        real = os.path.realpath(text)
        if not self._inside(real):
            return path
        shadow = self._shadow(real)
        if writing:
            if strict and not os.path.isdir(os.path.dirname(shadow)) and (
                    not os.path.isdir(os.path.dirname(real)) or os.path.dirname(real) in self.deleted):
                raise FileNotFoundError(2, "No such file or directory", text)
            os.makedirs(os.path.dirname(shadow), exist_ok=True)
            if keep and not os.path.exists(shadow) and real not in self.deleted and os.path.isfile(real):
                shutil.copy2(real, shadow)
            self.deleted.discard(real)
            return shadow
        if os.path.lexists(shadow) or real in self.deleted:
            return shadow  # what the script wrote, or (deleted) a path that does not exist
        if real.lower().endswith(SETTINGS):
            self.read.add(real)
        return path

    def install(self) -> None:
        sb = self

        def wrap(fn, writing_of, keep_of=lambda *a, **k: False, strict=False):
            @functools.wraps(fn)
            def inner(path, *args, **kwargs):
                if kwargs.get("dir_fd") is not None:  # relative to an open folder (shutil's own walks): as it is
                    return fn(path, *args, **kwargs)
                w = writing_of(*args, **kwargs)
                return fn(sb.path(path, w, w and keep_of(*args, **kwargs), strict), *args, **kwargs)
            return inner

        def mode_of(mode="r", *a, **k):
            return k.get("mode", mode)

        def text_writes(*a, **k):
            return any(c in str(mode_of(*a, **k)) for c in "wax+")

        def text_keeps(*a, **k):
            m = str(mode_of(*a, **k))
            return "a" in m or "+" in m and "w" not in m

        original_open, opener = io.open, wrap(io.open, text_writes, text_keeps, strict=True)
        builtins.open = io.open = opener
        os.open = wrap(os.open, lambda flags=0, *a, **k: bool(flags & WRITE_FLAGS),
                       lambda flags=0, *a, **k: not flags & os.O_TRUNC, strict=True)

        def gone(fn):
            @functools.wraps(fn)
            def inner(path, *args, **kwargs):
                if kwargs.get("dir_fd") is not None or isinstance(path, int):
                    return fn(path, *args, **kwargs)
                real = os.path.realpath(os.fsdecode(os.fspath(path)))
                if not sb._inside(real):
                    return fn(path, *args, **kwargs)
                shadow = sb._shadow(real)
                existed = os.path.lexists(shadow) or (real not in sb.deleted and os.path.lexists(real))
                if not existed:
                    raise FileNotFoundError(2, "No such file or directory", os.fsdecode(os.fspath(path)))
                if os.path.lexists(shadow):
                    fn(shadow, *args, **kwargs)
                sb.deleted.add(real)
            return inner

        os.remove, os.unlink, os.rmdir, shutil.rmtree = gone(os.remove), gone(os.unlink), gone(os.rmdir), gone(shutil.rmtree)

        def moves(fn):
            @functools.wraps(fn)
            def inner(src, dst, *args, **kwargs):
                if kwargs.get("src_dir_fd") is not None or kwargs.get("dst_dir_fd") is not None:
                    return fn(src, dst, *args, **kwargs)
                real_src = os.path.realpath(os.fsdecode(os.fspath(src)))
                s = sb.path(src, False)
                if sb._inside(real_src) and s == src:  # an original moved: copy it to the shadow, the original stays
                    d = sb.path(dst, True)
                    (shutil.copytree if os.path.isdir(real_src) else shutil.copy2)(real_src, d)
                    sb.deleted.add(real_src)
                    return None
                result = fn(s, sb.path(dst, True), *args, **kwargs)
                if sb._inside(real_src):
                    sb.deleted.add(real_src)
                return result
            return inner

        os.rename, os.replace, shutil.move = moves(os.rename), moves(os.replace), moves(shutil.move)
        os.mkdir = wrap(os.mkdir, lambda *a, **k: True, strict=True)
        # a file's times and mode set after it is written (shutil.copy2 / copy / copytree): on the shadow, a copy of
        # the original first where the script has not written it
        os.utime, os.chmod = (wrap(fn, lambda *a, **k: True, lambda *a, **k: True) for fn in (os.utime, os.chmod))
        for name, writes in (("listxattr", False), ("getxattr", False), ("setxattr", True), ("removexattr", True)):
            if hasattr(os, name):  # copystat's extended attributes (Linux)
                setattr(os, name, wrap(getattr(os, name), lambda *a, _w=writes, **k: _w, lambda *a, _w=writes, **k: _w))
        original_makedirs = os.makedirs

        @functools.wraps(original_makedirs)
        def makedirs(name, mode=0o777, exist_ok=False):
            real = os.path.realpath(os.fsdecode(os.fspath(name)))
            if sb._inside(real):
                if os.path.isdir(real) and real not in sb.deleted:
                    if not exist_ok:
                        raise FileExistsError(17, "File exists", os.fsdecode(os.fspath(name)))
                    return None
                return original_makedirs(sb._shadow(real), mode, exist_ok)
            return original_makedirs(name, mode, exist_ok)

        os.makedirs = makedirs
        raw_stat = os.stat

        def raw_isdir(p) -> bool:  # the real folder, whatever its shadow holds
            try:
                return stat.S_ISDIR(raw_stat(p).st_mode)
            except OSError:
                return False

        os.walk = _walking(os.walk, os.listdir, raw_isdir, sb)  # before listdir is wrapped: the raw one
        os.listdir = _listing(os.listdir, raw_isdir, sb)
        os.scandir = _scanning(os.scandir, raw_isdir, sb)
        for name in ("exists", "isfile", "isdir", "lexists", "getsize", "getmtime"):
            setattr(os.path, name, wrap(getattr(os.path, name), lambda *a, **k: False))
        os.stat = wrap(os.stat, lambda *a, **k: False)
        os.lstat = wrap(os.lstat, lambda *a, **k: False)  # tarfile.add, Path.is_symlink, glob of a literal name
        os.environ.setdefault("WANDB_MODE", "disabled")
        os.environ.setdefault("MLFLOW_TRACKING_URI", "file://" + os.path.join(sb.scratch, "mlruns"))
        from ..applying.after_import import when_imported
        from .sandbox_libs import install as libraries
        from .sandbox_tf import install as tensorflow, install_jax

        libraries(sb, original_open, opener)
        when_imported("tensorflow", lambda tf: tensorflow(tf, sb))
        when_imported("jax", lambda jax: install_jax(jax, sb))


def _protected(path, sb) -> str | None:
    """The real path of ``path`` where it is under a protected folder; None for others and for a descriptor."""
    if isinstance(path, int):
        return None
    real = os.path.realpath(os.fsdecode(os.fspath(path)))
    return real if sb._inside(real) else None


def _listing(listdir, isdir, sb):
    """os.listdir over the original folder and its shadow together, less what the script deleted."""
    @functools.wraps(listdir)
    def inner(path="."):
        real = _protected(path, sb)
        if real is None:
            return listdir(path)
        names = set(listdir(real)) if isdir(real) and real not in sb.deleted else set()
        shadow = sb._shadow(real)
        if isdir(shadow):
            names |= set(listdir(shadow))
        if not names and not isdir(real) and not isdir(shadow):
            raise FileNotFoundError(2, "No such file or directory", os.fsdecode(os.fspath(path)))
        return sorted(n for n in names if os.path.join(real, n) not in sb.deleted or os.path.lexists(os.path.join(shadow, n)))
    return inner


class _Entries:
    """What os.scandir returns, over entries read from more than one folder: an iterator and a context manager."""

    def __init__(self, entries):
        self._it = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._it = iter(())


def _scanning(scandir, isdir, sb):
    """os.scandir over the original folder and its shadow together, less what the script deleted: glob.glob and
    pathlib's glob scan with it (a script that saved shards and globbed them found none in a trial, and Path.glob
    failed on the folder it had made). Entries the script wrote are its shadow's (their ``path`` exists)."""
    @functools.wraps(scandir)
    def inner(path="."):
        real = _protected(path, sb)
        if real is None:
            return scandir(path)
        shadow, here = sb._shadow(real), isdir(real) and real not in sb.deleted
        mine, theirs = {}, {}
        if isdir(shadow):
            with scandir(shadow) as it:
                mine = {e.name: e for e in it}
        if here:
            with scandir(path) as it:
                theirs = {e.name: e for e in it if e.name not in mine and os.path.join(real, e.name) not in sb.deleted}
        if not (here or isdir(shadow)):
            raise FileNotFoundError(2, "No such file or directory", os.fsdecode(os.fspath(path)))
        return _Entries([*theirs.values(), *mine.values()])
    return inner


def _walking(walk, listdir, isdir, sb):
    """os.walk over the original folder and its shadow, less what the script deleted. Where the shadow holds files
    (the script wrote them), its folder is yielded too, with them, as a root of its own: code that lists files to
    read them natively (Keras' image_dataset_from_directory reads with tf.io.read_file) gets paths that exist. Keras'
    directory loaders walk with os.walk: a folder the script made and filled in its first run held no images in the
    trial, and images it deleted (the published image-classification example drops corrupted JPEGs) were listed."""
    @functools.wraps(walk)
    def inner(top, topdown=True, onerror=None, followlinks=False):
        real = os.path.realpath(os.fsdecode(os.fspath(top)))
        if not sb._inside(real):
            yield from walk(top, topdown, onerror, followlinks)
            return
        yield from merged(os.fsdecode(os.fspath(top)), real, topdown, onerror, followlinks)

    def names(folder: str, hide) -> set:
        try:
            return {n for n in listdir(folder) if not hide(os.path.join(folder, n))} if isdir(folder) else set()
        except OSError:
            return set()

    def merged(top, real, topdown, onerror, followlinks):
        shadow = sb._shadow(real)
        mine = names(shadow, lambda p: False)
        theirs = set() if real in sb.deleted else names(real, lambda p: p in sb.deleted or os.path.basename(p) in mine)
        if not (theirs or mine or isdir(shadow) or isdir(real) and real not in sb.deleted):
            if onerror is not None:
                onerror(FileNotFoundError(2, "No such file or directory", top))
            return
        dirs = sorted(n for n in theirs | mine if isdir(os.path.join(shadow if n in mine else real, n)))
        files = sorted(n for n in theirs if n not in dirs)
        written = sorted(n for n in mine if n not in dirs)
        if topdown:
            yield top, dirs, files
            if written:
                yield shadow, [], written
        for d in dirs:
            path = os.path.join(top, d)
            if followlinks or not os.path.islink(os.path.join(real, d)):
                yield from merged(path, os.path.realpath(path), topdown, onerror, followlinks)
        if not topdown:
            if written:
                yield shadow, [], written
            yield top, dirs, files

    return inner


def install(scratch: str, protect) -> Sandbox:
    sb = Sandbox(scratch, protect)
    sb.install()
    return sb


def own_outputs(fds=(1, 2)) -> set:
    """(device, inode) of the regular files this process writes its output to (``redline tune train.py > tune.log``
    in the script's folder): tune's own writes, not the script's, so fingerprint() leaves them out."""
    out = set()
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.add((st.st_dev, st.st_ino))
    return out


def fingerprint(folders, limit: int = 20000, skip=frozenset()) -> dict:
    """{path: (size, mtime_ns)} of the files under ``folders`` (at most ``limit``): what tune checks afterwards. An
    entry ending in "*" stands for the files and folders that begin with it (Sandbox.prefixes). ``skip``: (device,
    inode) of files left out (own_outputs())."""
    import glob

    out, paths = {}, []
    for folder in folders:
        paths += glob.glob(glob.escape(folder[:-1]) + "*") if folder.endswith("*") else [folder]
    for folder in paths:
        walked = (os.walk(folder) if os.path.isdir(folder) else
                  [(os.path.dirname(folder), [], [os.path.basename(folder)])])  # a file a prefix matched
        for root, dirs, files in walked:
            dirs[:] = [d for d in dirs if d not in ("__pycache__", ".git")]
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in skip:
                    out[p] = (st.st_size, st.st_mtime_ns)
                if len(out) >= limit:
                    return out
    return out


def changes(before: dict, after: dict) -> list[str]:
    """Paths added, removed or changed between two fingerprints."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


__all__ = ["Sandbox", "changes", "fingerprint", "install", "own_outputs"]

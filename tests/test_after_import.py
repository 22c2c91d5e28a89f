"""applying/after_import.py: hooks run at a module's first import, not before, and again at each later import (what
keras.config.set_backend does: keras removed from sys.modules and imported anew)."""

import importlib
import subprocess
import sys

import pytest

from redline.applying.after_import import pending, when_imported


def test_hooks_wait_for_the_import_and_follow_a_module_imported_anew(tmp_path, monkeypatch):
    (tmp_path / "redline_probe_mod.py").write_text("VALUE = object()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the finder goes with the test
    seen = []
    when_imported("redline_probe_mod", lambda m: seen.append(m.VALUE))
    assert seen == [] and pending("redline_probe_mod") and "redline_probe_mod" not in sys.modules
    assert importlib.util.find_spec("redline_probe_mod") is not None and seen == []  # a probe imports nothing
    first = importlib.import_module("redline_probe_mod")
    assert seen == [first.VALUE] and not pending("redline_probe_mod")
    del sys.modules["redline_probe_mod"]
    again = importlib.import_module("redline_probe_mod")
    assert again is not first and seen == [first.VALUE, again.VALUE]
    later = []
    when_imported("redline_probe_mod", lambda m: later.append(m.VALUE))  # already imported: now
    assert later == [again.VALUE]
    del sys.modules["redline_probe_mod"]


def test_a_clocked_import_is_timed_where_it_falls(tmp_path, monkeypatch):
    """clock(name): the seconds spent importing ``name`` (its own imports included) inside a span of
    time.perf_counter(), where it fell; nothing outside it, and nothing for a module not clocked. Its CPU time apart:
    the import's 0.2 s asleep (as a process waits beside others, or stopped) is not in it, its 0.1 s of work is."""
    import time

    from redline.applying.after_import import clock, import_cpu_seconds, import_seconds

    (tmp_path / "redline_slow_mod.py").write_text("import time\ntime.sleep(0.2)\nc = time.thread_time()\n"
                                                  "while time.thread_time() - c < 0.1:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "redline_slow_mod", raising=False)
    clock("redline_slow_mod")
    t0 = time.perf_counter()
    importlib.import_module("redline_slow_mod")
    t1 = time.perf_counter()
    assert 0.3 <= import_seconds("redline_slow_mod", t0, t1) <= t1 - t0
    assert 0.1 <= import_cpu_seconds("redline_slow_mod") <= import_seconds("redline_slow_mod", t0, t1) - 0.15
    assert import_cpu_seconds("redline_not_clocked") == 0.0
    assert import_seconds("redline_slow_mod", t1, t1 + 60) == 0.0 and import_seconds("redline_slow_mod", 0, t0) == 0.0
    start, end, _ = next(f for f in sys.meta_path if getattr(f, "name", None) == "redline_slow_mod").spans[0]
    assert import_seconds("redline_slow_mod", start, (start + end) / 2) == pytest.approx((end - start) / 2)  # a part
    assert import_seconds("redline_not_clocked", t0, t1) == 0.0
    del sys.modules["redline_slow_mod"]


def test_tensorflow_s_import_is_paid_in_cpu_seconds_not_in_the_wall_time_it_took(tmp_path):
    """tuning/steps.tf_paid: what a process paid for TensorFlow's import, as a run alone pays it. A stand-in package
    named tensorflow sleeps 0.5 s (as an import waits beside other busy processes, or stopped) and works 0.1 s: the
    figure is the work, not the 0.6 s; None where it was imported before the clock (a spare's import)."""
    pkg = tmp_path / "tensorflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import time\ntime.sleep(0.5)\nc = time.thread_time()\n"
                                     "while time.thread_time() - c < 0.1:\n    pass\n")
    code = ("import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom redline.applying.after_import import clock\n"
            "from redline.tuning.steps import tf_paid\nif sys.argv[2] == 'clocked':\n    clock('tensorflow')\n"
            "before = tf_paid()\nt0 = time.perf_counter()\nimport tensorflow\n"
            "print(before, tf_paid(), time.perf_counter() - t0)\n")
    for mode in ("clocked", "imported before the clock"):
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path), mode], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        before, paid, took = r.stdout.split()
        assert float(before) == 0.0 and float(took) >= 0.6, r.stdout
        if mode == "clocked":
            assert 0.1 <= float(paid) <= float(took) - 0.45, r.stdout  # the 0.5 s asleep is not in it
        else:
            assert paid == "None", r.stdout


@pytest.mark.parametrize("collecting", [True, False])
def test_a_watched_import_runs_with_the_cycle_collector_paused_and_puts_it_back_as_it_was(tmp_path, monkeypatch,
                                                                                          collecting):
    """A watched import (keras, tensorflow) runs with gc paused: its ~1,000 collections free nothing and cost
    TensorFlow's import ~20% of its CPU. The collector comes back as it was before the import (off where the user
    turned it off), after a nested watched import, and after an import that fails."""
    import gc

    (tmp_path / "redline_gc_outer.py").write_text("import gc\nBEFORE = gc.isenabled()\nimport redline_gc_inner\n"
                                                  "AFTER_INNER = gc.isenabled()\n")
    (tmp_path / "redline_gc_inner.py").write_text("import gc\nINSIDE = gc.isenabled()\n")
    (tmp_path / "redline_gc_broken.py").write_text("import gc\nassert not gc.isenabled()\nraise RuntimeError('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    for name in ("redline_gc_outer", "redline_gc_inner", "redline_gc_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        when_imported(name, lambda m: None)
    was = gc.isenabled()
    try:
        (gc.enable if collecting else gc.disable)()
        outer = importlib.import_module("redline_gc_outer")
        assert (outer.BEFORE, outer.AFTER_INNER, sys.modules["redline_gc_inner"].INSIDE) == (False, False, False)
        assert gc.isenabled() is collecting
        with pytest.raises(RuntimeError):
            importlib.import_module("redline_gc_broken")
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
        for name in ("redline_gc_outer", "redline_gc_inner", "redline_gc_broken"):
            sys.modules.pop(name, None)

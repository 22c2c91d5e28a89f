"""applying/after_import.py: hooks run at a module's first import, not before, and again at each later import (what
keras.config.set_backend does: keras removed from sys.modules and imported anew)."""

import importlib
import sys

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

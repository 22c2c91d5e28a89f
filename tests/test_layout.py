"""The layout shows the flow: no package imports one that comes after it in
detect -> plan -> apply -> run/measure -> diagnose -> report, lazy imports included."""

import ast
import pathlib

import redline

ROOT = pathlib.Path(redline.__file__).parent

#: each package may import from its own rank or lower ones only.
RANKS = {
    "errors": 0, "outputs": 0,
    "detection": 1,
    "planning": 2,
    "applying": 3,
    "data": 4, "monitoring": 4, "workloads": 4,
    "diagnosis": 5,
    "reporting": 6,
    "benchmarking": 7, "tuning": 7, "launching": 7,
    "cli": 8, "__main__": 8,
}


def _imports(path: pathlib.Path, root: pathlib.Path):
    """(line, imported top-level redline package) for every relative import in a file, nested ones too."""
    package = path.relative_to(root).parts
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[:-1])[: len(package) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                yield node.lineno, target[0]
            else:  # "from .. import x": x is the package
                for alias in node.names:
                    yield node.lineno, alias.name


def layer_violations(root=ROOT):
    out = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) == 1 and parts[0] == "__init__.py":
            continue  # the package's front door re-exports from every layer
        own = parts[0].removesuffix(".py")
        for line, target in _imports(path, root):
            if target in RANKS and RANKS[target] > RANKS[own]:
                out.append(f"{path.relative_to(root)}:{line} ({own}) imports {target}")
    return out


def test_every_package_has_a_rank():
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir() if (p.is_dir() and (p / "__init__.py").exists()) or
                (p.suffix == ".py" and p.name != "__init__.py")}
    assert packages <= set(RANKS), f"give these a rank in the flow: {sorted(packages - set(RANKS))}"


def test_no_import_from_a_lower_layer_back_up():
    assert layer_violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    (tmp_path / "detection").mkdir()
    (tmp_path / "detection" / "x.py").write_text("def f():\n    from ..diagnosis import run\n")
    assert layer_violations(tmp_path) == ["detection/x.py:2 (detection) imports diagnosis"]

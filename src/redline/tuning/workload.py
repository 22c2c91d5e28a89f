"""What a tuned choice was measured on, read from the script's code: an edit that cannot change the workload keeps
the choice.

The fingerprint is the script's syntax tree with what cannot change a training step's cost taken out: comments and
formatting (not in the tree), docstrings and bare strings, ``print(...)`` statements, and the values of ``epochs``,
the learning rate and ``verbose`` (as keyword arguments, or as constants assigned to names such as ``EPOCHS`` or
``learning_rate``). Any other edit (a layer, a batch size, the input, a compile argument, an import) changes it, and
the choice is stale: the safe side, decided before anything is applied.
"""

from __future__ import annotations

import ast
import hashlib

#: names whose values change how long training runs or how it learns, not what one step costs
NEUTRAL = frozenset({"epochs", "num_epochs", "n_epochs", "initial_epoch", "learning_rate", "lr", "verbose"})


class _Neutral(ast.NodeTransformer):
    def visit_Expr(self, node):  # noqa: N802  (ast's visitor names)
        v = node.value
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            return None  # a docstring or a bare string (the tree is only dumped, never compiled)
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "print":
            return None
        return self.generic_visit(node)

    def visit_keyword(self, node):  # noqa: N802
        if node.arg and node.arg.lower() in NEUTRAL:
            return ast.keyword(arg=node.arg, value=ast.Constant(None))
        return self.generic_visit(node)

    def visit_Assign(self, node):  # noqa: N802
        names = [t.id.lower() for t in node.targets if isinstance(t, ast.Name)]
        if names and all(n in NEUTRAL for n in names) and isinstance(node.value, ast.Constant):
            return ast.Assign(targets=node.targets, value=ast.Constant(None), lineno=node.lineno)
        return self.generic_visit(node)


def fingerprint(source: bytes | str) -> str:
    """sha256 of the script's workload as its code sets it (see the module's doc); of the bytes where it does not parse."""
    try:
        tree = _Neutral().visit(ast.parse(source))
    except (SyntaxError, ValueError):
        data = source if isinstance(source, bytes) else source.encode()
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


__all__ = ["NEUTRAL", "fingerprint"]

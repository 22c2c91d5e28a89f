"""What every subcommand shares: a parser that fails in one line, and the plan options."""

from __future__ import annotations

import argparse
import io
import os
import sys

from ..errors import UsageError
from ..planning import GPU_MEMORY_MODES, POLICIES, STRATEGIES


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one clear line on stderr and exit code 2, and no option is matched
    by an abbreviation (so everything after a script's name is the script's, `--b` included)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _gpu_memory(text: str):
    if text in GPU_MEMORY_MODES:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid: use growth, full or a per-GPU limit in MiB such as 4096") from None


def _jit(text: str):
    value = {"true": True, "false": False, "auto": "auto"}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid: use true, false or auto")
    return value


def _onednn(text: str):
    value = {"on": True, "off": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid: use on or off")
    return value


def add_plan_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("plan options (unset: redline decides, and says why)")
    g.add_argument("--intra-threads", type=int, metavar="N", help="intra-op threads")
    g.add_argument("--inter-threads", type=int, metavar="N", help="inter-op threads")
    g.add_argument("--gpu-memory", type=_gpu_memory, metavar="MODE", help="growth, full or a per-GPU limit in MiB")
    g.add_argument("--strategy", choices=STRATEGIES, default="auto", help="device layout (default: auto)")
    g.add_argument("--cpu-devices", type=int, metavar="N", help="logical CPU devices for --strategy mirrored without a GPU")
    g.add_argument("--batch-size", type=int, metavar="N", help="per-replica batch size, to plan the global batch")
    g.add_argument("--precision", metavar="POLICY", help=f"apply a precision policy: auto or one of {', '.join(POLICIES)}")
    g.add_argument("--onednn", type=_onednn, metavar="on|off", help="TF_ENABLE_ONEDNN_OPTS")
    g.add_argument("--steps-per-execution", type=int, metavar="N", help="Model.compile default")
    g.add_argument("--jit-compile", type=_jit, metavar="true|false|auto", help="Model.compile default")
    g.add_argument("--backend", metavar="NAME", help="Keras backend: tensorflow, jax or torch")


def plan_choices(args) -> dict:
    return dict(
        intra_threads=args.intra_threads,
        inter_threads=args.inter_threads,
        gpu_memory=args.gpu_memory,
        strategy=args.strategy,
        cpu_devices=args.cpu_devices,
        batch_size=args.batch_size,
        precision=args.precision,
        onednn=args.onednn,
        steps_per_execution=args.steps_per_execution,
        jit_compile=args.jit_compile,
        backend=args.backend,
    )


def fail(message: str) -> int:
    sys.stderr.write(f"redline: error: {message}\n")
    return 2


def budget(text: str) -> float | None:
    """--budget: seconds (30 to 86400), or "auto" (None): sized from the training the first trial predicts."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds or 'auto'; give e.g. --budget 180 or "
                                         "--budget auto") from None
    if not 30 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid: give 30 to 86400 seconds, or auto (default 180)")
    return value


def long_options(parser: argparse.ArgumentParser) -> list:
    """The parser's own --options (not --help), for options_after_script."""
    return sorted({o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"})


def options_after_script(options, command: str, script: str, script_args) -> str | None:
    """A one-line note where an argument after the script is one of ``command``'s own ``options``: it goes to the
    script (its arguments are its own, by design), which is easy to do by mistake; None otherwise."""
    given = [a.split("=", 1)[0] for a in script_args or () if a.split("=", 1)[0] in set(options)]
    if not given:
        return None
    return (f"note: {', '.join(given)} after the script goes to {script}, not to redline {command}; "
            f"{command}'s own options come before the script: redline {command} {given[0]} ... {script}")


__all__ = ["Parser", "UsageError", "add_plan_options", "budget", "fail", "long_options", "options_after_script",
           "plan_choices"]


def check_script(script: str, command: str, example: str = "", syntax: bool = True) -> None:
    """UsageError, in one line, where ``script`` is not a Python file `redline COMMAND` can run: missing, a folder, a
    Jupyter notebook (whose JSON Python would read as one dict and run as nothing), or (``syntax``) a .py file Python
    cannot compile (`redline run` leaves that to Python, which shows it as `python` does)."""
    if not os.path.isfile(script):
        what = "is a directory" if os.path.isdir(script) else "does not exist"
        raise UsageError(f"script {script!r} {what}; give the path of a Python file, e.g. redline {command} "
                         f"train.py{example}")
    if script.lower().endswith(".ipynb"):
        raise UsageError(f"{script!r} is a Jupyter notebook, not a Python script; export its code with `jupyter "
                         f"nbconvert --to script {script}` and give redline {command} the .py it writes, or call "
                         "redline.tune(model, x, y) in the notebook itself")
    if syntax and script.lower().endswith(".py"):
        try:
            with io.open_code(os.path.abspath(script)) as f:
                source = f.read()
        except OSError as e:  # unreadable here: no process could run it either
            raise UsageError(f"script {script!r} cannot be read ({e.strerror or e}); give redline {command} a Python "
                             "file you can read (check its permissions)") from None
        try:
            compile(source, script, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as e:  # before a trial process starts: one line, not a trial's traceback
            # (a null byte: a SyntaxError without a line from Python 3.11.4 on, a ValueError before)
            where = f"{script}:{e.lineno}" if getattr(e, "lineno", None) else script
            raise UsageError(f"{where}: {type(e).__name__}: {getattr(e, 'msg', None) or e}; `python {script}` fails "
                             "the same way: fix that line, then run redline again") from None

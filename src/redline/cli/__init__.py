"""The command line: one module per subcommand over the library."""

from __future__ import annotations

import importlib
import sys

from ..errors import RedlineError
from .common import Parser

#: the subcommands' modules, in the order `redline --help` lists them
COMMANDS = ("doctor", "run", "tune", "launch", "data_service", "bench", "diagnose", "report")


def _name(module: str) -> str:
    return module.replace("_", "-")


def build_parser(only: str | None = None) -> Parser:
    """The parser of every subcommand, or of ``only`` (a subcommand's name as typed): `redline run` then imports
    run's module and what it needs, not the tuner's, the benchmark's and the reports' (`redline run --no-tuned` of a
    script that imports keras: 3.08 -> 2.87 s, `python` 2.74 s, medians of 5 on a 2-core VM)."""
    parser = Parser(prog="redline", description="Make Keras use the CPU cores and GPUs it has.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        if only is None or _name(module) == only:
            importlib.import_module(f".{module}", __name__).register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = argv[0] if argv else None
    args = build_parser(first if first in {_name(m) for m in COMMANDS} else None).parse_args(argv)
    try:
        return args.func(args)
    except RedlineError as exc:
        if getattr(args, "script_started", False):
            raise  # the script's own error: Python reports it as the script would
        sys.stderr.write(f"redline {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        if getattr(args, "script_started", False):
            raise  # the script's own: Python reports it as the script would
        said = {"tune": "; no choice was saved (its trial processes were stopped, their scratch folders removed)",
                "run": "; the script had not started (no choice was saved)"}.get(args.command, "")
        sys.stderr.write(f"redline {args.command}: interrupted (Ctrl-C){said}\n")
        return 130  # as a shell reports a command stopped by SIGINT

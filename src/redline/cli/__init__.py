"""The command line: one module per subcommand over the library."""

from __future__ import annotations

import sys

from ..errors import RedlineError
from . import bench, data_service, diagnose, doctor, launch, report, run, tune
from .common import Parser

COMMANDS = (doctor, run, tune, launch, data_service, bench, diagnose, report)


def build_parser() -> Parser:
    parser = Parser(prog="redline", description="Make Keras use the CPU cores and GPUs it has.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
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

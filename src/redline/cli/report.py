"""redline report: one self-contained HTML page for a run record."""

from __future__ import annotations

import os

from ..diagnosis import diagnose_record
from ..errors import UsageError
from ..outputs import check_output, is_html_report, same_file
from ..reporting.html import render

HELP = "write a self-contained HTML report of a run record: CPU per core, GPU, throughput, step breakdown, findings, plan"


def register(sub) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP)
    p.add_argument("record", metavar="RUN", help="a run record (.jsonl) written by redline.Monitor or redline.diagnose")
    p.add_argument("-o", "--output", metavar="FILE", help="the HTML file (default: RUN with .html)")
    p.set_defaults(func=main)


def main(args) -> int:
    out = args.output or os.path.splitext(args.record)[0] + ".html"
    if os.path.exists(out) and same_file(out, args.record):
        raise UsageError(f"-o {out!r} is the run record itself: redline refuses to write over its input; "
                         "give another file, e.g. -o report.html")
    check_output(out, "-o", "an HTML report", replaceable=is_html_report)
    rec, summary, diag = diagnose_record(args.record)
    page = render(rec.header, rec.samples, summary, diag, rec.notes)
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise UsageError(f"--output {out!r} is not writable ({exc.strerror}); choose a path you can write to") from None
    for note in rec.notes:
        print(f"  note: {note}")
    print(f"report written to {out} ({len(page) // 1024} KiB, {summary.steps} steps, verdict: {diag.kind})")
    return 0

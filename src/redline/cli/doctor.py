"""redline doctor: the machine, the plan with its reasons, and what is misconfigured."""

from __future__ import annotations

import json

from ..detection import detect
from ..diagnosis import ERROR, config_findings
from ..planning import plan
from ..reporting.text import findings_text, plan_text, snapshot_text
from .common import add_plan_options, plan_choices

HELP = "show the machine, redline's plan with its reasons, and misconfigurations (exit 1 on errors)"


def register(sub) -> None:
    p = sub.add_parser("doctor", help=HELP, description=HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_plan_options(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from ..launching.layout import plan_launch

    snapshot = detect()
    the_plan = plan(snapshot, **plan_choices(args))
    findings = config_findings(snapshot, the_plan)
    healthy = not any(f.severity == ERROR for f in findings)
    launch = plan_launch(snapshot, port="PORT")  # what `redline launch` would start here (the port is chosen at launch)
    if args.json:
        print(json.dumps({
            "snapshot": snapshot.to_dict(),
            "plan": the_plan.to_dict(),
            "launch": launch.to_dict(),
            "findings": [f.__dict__ for f in findings],
            "healthy": healthy,
        }, indent=2))
    else:
        print(snapshot_text(snapshot))
        print("\nPlan")
        print(plan_text(the_plan))
        for note in the_plan.notes:
            print(f"  note: {note}")
        print("\nScale-out (`redline launch SCRIPT` on this host alone; --dry-run shows it for any options)")
        print("\n".join("  " + line for line in launch.text().splitlines()[1:]))
        print("\nFindings")
        print(findings_text(findings))
        print(f"\n{'healthy' if healthy else 'NOT healthy'}: {snapshot.cpu.usable} usable CPU(s), {len(snapshot.gpus.visible)} visible GPU(s)")
    return 0 if healthy else 1

"""TF_CONFIG parsing: the cluster a MultiWorkerMirroredStrategy would join."""

from __future__ import annotations

import json

from ..errors import UsageError
from .model import Cluster

_FIX = "set TF_CONFIG to JSON like {\"cluster\": {\"worker\": [\"host1:port\", \"host2:port\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}, or unset it for a single machine"


def parse_tf_config(text: str | None) -> Cluster | None:
    """The cluster TF_CONFIG describes, None when unset or empty; UsageError when malformed."""
    if text is None or not text.strip():
        return None
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"TF_CONFIG={shown!r} is not valid JSON ({exc}); {_FIX}") from None
    if not isinstance(config, dict):
        raise UsageError(f"TF_CONFIG={shown!r} must be a JSON object; {_FIX}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UsageError(f"TF_CONFIG={shown!r} needs both a \"cluster\" and a \"task\" object; {_FIX}")
    workers = cluster.get("worker", [])
    chiefs = cluster.get("chief", [])
    if not isinstance(workers, list) or not isinstance(chiefs, list) or not all(isinstance(w, str) and ":" in w for w in workers + chiefs):
        raise UsageError(f"TF_CONFIG={shown!r}: cluster.worker and cluster.chief must be lists of \"host:port\" strings; {_FIX}")
    if not workers and not chiefs:
        raise UsageError(f"TF_CONFIG={shown!r} lists no workers; {_FIX}")
    task_type, index = task.get("type"), task.get("index")
    members = {"worker": workers, "chief": chiefs}
    if task_type not in members or not members[task_type]:
        valid = ", ".join(k for k, v in members.items() if v)
        raise UsageError(f"TF_CONFIG={shown!r}: task.type {task_type!r} is not in the cluster (valid: {valid}); {_FIX}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(members[task_type]):
        raise UsageError(
            f"TF_CONFIG={shown!r}: task.index {index!r} is out of range; valid is 0 to {len(members[task_type]) - 1} for {task_type!r}; {_FIX}"
        )
    return Cluster(workers=tuple(chiefs + workers), task_type=task_type, task_index=index)

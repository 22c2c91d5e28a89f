"""redline data-service dispatcher|worker: tf.data service servers, to run input pipelines' preprocessing in other
processes or on other hosts (`redline.data.pipeline(..., service="grpc://HOST:PORT")`)."""

from __future__ import annotations

import os
import signal
import threading

from ..errors import UsageError
from ..outputs import check_folder

HELP = "start a tf.data service dispatcher or worker (preprocessing off the training process)"


def register(sub) -> None:
    p = sub.add_parser("data-service", help=HELP, description=HELP + ". They run until stopped (Ctrl-C or SIGTERM).")
    roles = p.add_subparsers(dest="role", metavar="ROLE")
    roles.required = True
    d = roles.add_parser("dispatcher", help="the dispatcher: hands out the pipeline's work, fault-tolerant (journal in "
                         "--work-dir)")
    d.add_argument("--port", default="5050", metavar="PORT", help="port to listen on (default 5050)")
    d.add_argument("--work-dir", metavar="DIR", help="its journal, so a restarted dispatcher resumes (default: under the "
                   "user's cache folder)")
    d.set_defaults(func=main)
    w = roles.add_parser("worker", help="a worker: runs the pipeline's preprocessing")
    w.add_argument("--dispatcher", required=True, metavar="HOST:PORT", help="the dispatcher's address")
    w.add_argument("--port", default="0", metavar="PORT", help="port to listen on (default: a free one)")
    w.set_defaults(func=main)


def _port(text, allow_zero) -> int:
    low = 0 if allow_zero else 1
    if not str(text).isdigit() or not low <= int(text) <= 65535:
        raise UsageError(f"--port {text!r} is not valid: give {low} to 65535")
    return int(text)


def _serve(server, what: str) -> int:
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *a: stop.set())
    print(f"redline data-service: {what}; stop with Ctrl-C or SIGTERM", flush=True)
    stop.wait()
    server.stop()
    print("redline data-service: stopped", flush=True)
    return 0


def main(args) -> int:
    from ..data import service
    from ..tuning.cache import cache_dir

    if args.role == "dispatcher":
        port = _port(args.port, allow_zero=False)
        work_dir = args.work_dir or os.path.join(os.path.dirname(cache_dir()), "data-service", f"dispatcher-{port}")
        work_dir = check_folder(work_dir, "--work-dir")
        from ..launching.ports import check_free

        check_free("0.0.0.0", port, bind_all=True)
        server = service.dispatcher(port, work_dir)
        return _serve(server, f"dispatcher at grpc://{_host()}:{port} (fault-tolerant, journal in {work_dir})")
    port = _port(args.port, allow_zero=True)
    service.check_reachable(args.dispatcher, timeout_s=5.0, what="--dispatcher ")
    server = service.worker(args.dispatcher, port)
    return _serve(server, f"worker for the dispatcher at {args.dispatcher}")


def _host() -> str:
    import socket

    return socket.gethostname()


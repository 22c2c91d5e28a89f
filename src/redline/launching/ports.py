"""The coordinator's port: a free one chosen, or the one asked for checked before anything starts."""

from __future__ import annotations

import socket

from ..errors import UsageError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_free(host: str, port: int, bind_all: bool) -> None:
    """A UsageError where this host cannot listen on ``port`` (in use, or not an address of this host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = ("::" if family == socket.AF_INET6 else "0.0.0.0") if bind_all else host
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((where, port))
        except OSError as exc:
            raise UsageError(f"the coordinator cannot listen on {host}:{port}: {exc.strerror or exc} - give a free port, e.g. "
                             f"--coordinator {host}:{free_port() if family == socket.AF_INET else 29500}, or leave "
                             "--coordinator out on one host") from None

"""``jnst serve``: a local web page to stylize with a live preview, and its JSON API.

Needs the ``serve`` extra (``pip install "jnst[serve]"``: Starlette, uvicorn, python-multipart).
:mod:`jnst.serve.jobs` queues and runs the jobs, :mod:`jnst.serve.settings` checks a job's
settings, :mod:`jnst.serve.app` holds the routes, ``static/`` the page (no build step).
"""

from __future__ import annotations

from pathlib import Path

from jnst.serve.app import create_app

__all__ = ["create_app", "run"]


def run(folder: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the page and the API on ``host:port`` until interrupted, with the jobs in ``folder``
    (unfinished ones found there resume); ValueError (one line) if that address cannot be bound
    or the folder used, found before anything else starts."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        raise ValueError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    try:
        app = create_app(folder)
    except ValueError:
        listener.close()
        raise
    where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else "every machine that can reach it"
    print(f"jnst serve: open http://{host}:{port}/ (bound to {host}: {where}; Ctrl-C stops)", flush=True)
    print(f"jnst serve: jobs are kept in {folder}; a restart resumes the unfinished ones", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])

"""``jnst serve``: a local web page to stylize with a live preview, and its JSON API.

Needs the ``serve`` extra (``pip install "jnst[serve]"``: Starlette, uvicorn, python-multipart).
:mod:`jnst.serve.jobs` queues and runs the jobs, :mod:`jnst.serve.settings` checks a job's
settings, :mod:`jnst.serve.app` holds the routes, ``static/`` the page (no build step).
"""

from __future__ import annotations

from jnst.serve.app import create_app

__all__ = ["create_app", "run"]


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the page and the API on ``host:port`` until interrupted."""
    import uvicorn

    where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else "every machine that can reach it"
    print(f"jnst serve: open http://{host}:{port}/ (bound to {host}: {where}; Ctrl-C stops)", flush=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")

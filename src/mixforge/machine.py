"""What this machine offers the process: the CPU cores it may use."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1

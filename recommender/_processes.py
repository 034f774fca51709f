"""Whether a process of this machine still runs: one answer for the registry's abandoned runs and
the service's dead workers."""

from __future__ import annotations

import os

__all__ = ["process_alive"]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine. Another user's process runs; a zombie (ended,
    its parent has not collected it yet: a worker just killed) does not.

    >>> process_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, say: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (name) state ...": the name may hold spaces and parentheses
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (not Linux): os.kill's answer
        return True

"""Stop a local Ray whose driver died without stopping it: after `kill -9` of a `precompute --ray local`, Ray's
agents (DashboardAgent, RuntimeEnvAgent) can outlive the driver and its raylet. `python -m runs.reaper PID`
follows PID's process tree (Linux /proc) every second and, once PID has died, kills what was in it then (each
process only if it is still the one it saw: same start time). runs.cluster.connect starts it for a local Ray."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

POLL_SECONDS = 1.0


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process from /proc/<pid>/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (name) ": state, ppid, ..., starttime (22nd)
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """{pid: start time} of every process below `root` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, str] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found and pid in starts:
            found[pid] = starts[pid]
            todo.extend(parents.get(pid, []))
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")  # a killed driver stays a zombie until it is reaped


def reap(driver: int) -> list[int]:
    """Follow `driver`'s process tree until it dies, then kill what was in it; returns the pids killed."""
    seen: dict[int, str] = {}
    while alive(driver):
        seen = {p: s for p, s in descendants(driver).items() if p != os.getpid()}
        time.sleep(POLL_SECONDS)
    killed = []
    for pid, start in seen.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


if __name__ == "__main__":
    reap(int(sys.argv[1]))

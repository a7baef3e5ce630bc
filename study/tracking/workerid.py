"""Who runs a trial: ``host:pid`` of the process, written on Optuna trials and MLflow runs so
that the trials and runs of a dead worker can be found.

The host part is ``STUDY_WORKER_HOST`` when set, else the host name with the kernel's boot id
and this process's pid namespace: a process id is only judged (alive or dead) by a process on
the same host, same boot and same pid namespace, so two containers or machines that share a
host name never fail each other's live trials.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def worker_host() -> str:
    """Where this process runs, as recorded on its trials and runs: ``STUDY_WORKER_HOST`` if
    set, else the host name with the kernel's boot id and this process's pid namespace
    (``host~boot.ns``), so that two containers or machines sharing a host name never judge
    each other's process ids."""
    named = os.environ.get("STUDY_WORKER_HOST")
    if named:
        return named
    token = []
    try:
        token.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        token.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return socket.gethostname() + ("~" + ".".join(token) if token else "")


def worker_id() -> str:
    """``host:pid`` of this process, stored on runs and trials so dead workers can be found."""
    return f"{worker_host()}:{os.getpid()}"


def worker_is_dead(worker: str | None) -> bool:
    """True only when ``worker`` ran on this host (same boot, same pid namespace) and its
    process no longer exists."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != worker_host() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A process that has exited but whose parent has not collected it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"

"""Who runs a trial (:mod:`study.tracking.workerid`): host names that tell machines, boots and pid
namespaces apart, and dead processes, zombies included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from study.tracking import workerid


def test_worker_host_names_the_boot_and_pid_namespace_and_can_be_set(monkeypatch):
    host = workerid.worker_host()
    assert host.startswith(__import__("socket").gethostname())
    if Path("/proc/self/ns/pid").exists():
        assert host.endswith(f".{os.stat('/proc/self/ns/pid').st_ino}")
    monkeypatch.setenv("STUDY_WORKER_HOST", "node-7")
    assert workerid.worker_id() == f"node-7:{os.getpid()}"
    assert not workerid.worker_is_dead(f"{host}:1")  # another host's pid 1 is never judged


def test_a_worker_that_exited_but_was_not_collected_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # a zombie still answers os.kill(pid, 0); its trials must be reaped all the same
    assert workerid.worker_is_dead(f"{workerid.worker_host()}:{child.pid}")
    child.wait()


def test_only_a_well_formed_id_of_this_host_is_ever_judged_dead():
    here = workerid.worker_host()
    assert not workerid.worker_is_dead(workerid.worker_id())  # this process lives
    for malformed in (None, "", "no-colon", f"{here}:abc"):
        assert not workerid.worker_is_dead(malformed)
    assert workerid.worker_id() == f"{here}:{os.getpid()}"

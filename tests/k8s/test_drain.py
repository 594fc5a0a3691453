"""The preStop drain: counting a node's calls, the drain request, the bounded wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.session_actor import SessionActor
from deployments import drain
from deployments.drain import drain_command, session_processes, wait_for_calls


def fake_proc(root: Path, processes: dict[int, bytes]) -> Path:
    for pid, cmdline in processes.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "cmdline").write_bytes(cmdline)
    (root / "self").mkdir()  # not a pid: skipped
    (root / "77").mkdir()  # a process that ended before its cmdline was read
    return root


def test_the_class_name_is_the_session_actors():
    assert SessionActor.__name__ == drain.SESSION_ACTOR_CLASS


def test_only_session_actor_processes_count(tmp_path: Path):
    proc = fake_proc(
        tmp_path,
        {
            10: b"ray::SessionActor\0\0\0",
            11: b"ray::SessionActor.push_audio\0",
            12: b"ray::IDLE\0",
            13: b"ray::ServeReplica:s2s:Ingress\0",
            14: b"ray::SessionActorPool\0",  # another class
            15: b"python\0-m\0deployments.drain\0",
        },
    )
    assert session_processes(proc) == [10, 11]


def test_the_drain_request_is_ray_drain_node_with_the_deadline():
    command = drain_command(3540)
    assert command[:2] == ["ray", "drain-node"]
    assert command[command.index("--reason") + 1] == "DRAIN_NODE_REASON_PREEMPTION"
    assert command[command.index("--deadline-remaining-seconds") + 1] == "3540"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waits_until_the_calls_end():
    clock, said = Clock(), []
    counts = iter([3, 2, 2, 0])
    done = wait_for_calls(
        lambda: next(counts), 100, interval_s=5, clock=clock, sleep=clock.sleep, say=said.append
    )
    assert done is True
    assert clock.now == 15
    assert said[-1] == "drain: no live calls left"


def test_gives_up_at_the_timeout():
    clock, said = Clock(), []
    done = wait_for_calls(
        lambda: 4, 12, interval_s=5, clock=clock, sleep=clock.sleep, say=said.append
    )
    assert done is False
    assert clock.now == 12  # the last sleep is cut to the deadline
    assert "timeout with 4 live call(s)" in said[-1]


def test_a_failing_count_keeps_waiting_rather_than_cutting_calls():
    clock, said = Clock(), []
    answers = iter([RuntimeError("GCS unreachable"), 0])

    def count() -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for_calls(count, 60, clock=clock, sleep=clock.sleep, say=said.append) is True
    assert "cannot count live calls (RuntimeError: GCS unreachable)" in said[0]


def test_the_hook_exits_0_even_when_ray_is_not_there(tmp_path: Path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}  # no `ray`: drain-node fails
    out = subprocess.run(
        [sys.executable, "-m", "deployments.drain", "--timeout", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "ray drain-node failed" in out.stdout


_REAL_ACTOR = """
import os, ray
from deployments.drain import session_processes

@ray.remote(num_cpus=0)
class SessionActor:
    def pid(self):
        return os.getpid()

ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
actor = SessionActor.remote()
pid = ray.get(actor.pid.remote())
print(pid in session_processes(), pid)
ray.shutdown()
"""


@pytest.mark.slow
def test_a_real_ray_actor_process_is_counted():
    """Ray titles an actor's process ``ray::<class>``: what the node drain counts."""
    out = subprocess.run(
        [sys.executable, "-c", _REAL_ACTOR],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "True", out.stdout

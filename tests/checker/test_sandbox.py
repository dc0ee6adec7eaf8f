"""The sandbox: limits, crashes, blocked operations, events, cancellation, clean host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from genesys.lmade.sandbox import (
    Limits,
    SessionClosed,
    _private_dirs,
    _read_roots,
    isolation,
    open_session,
    run_sandboxed,
)

HERE = str(Path(__file__).resolve().parent)


def run(name: str, payload: dict | None = None, **limits) -> object:
    limits.setdefault("wall_s", 20)
    return run_sandboxed(f"sandbox_targets:{name}", payload or {},
                         Limits(pythonpath=(HERE,), **limits))


def test_value_events_scratch_and_scrubbed_env(monkeypatch):
    monkeypatch.setenv("GENESYS_API_TOKEN", "secret-token")
    seen = []
    result = run_sandboxed("sandbox_targets:echo", {"events": 3},
                           Limits(wall_s=20, pythonpath=(HERE,)), on_event=seen.append)
    assert result.ok, result.error
    assert result.value["echo"] == {"events": 3}
    assert seen == [{"step": 0}, {"step": 1}, {"step": 2}] == result.events
    assert "GENESYS_API_TOKEN" not in result.value["env"]
    scratch = result.value["cwd"]
    assert "genesys-sandbox-" in scratch and not os.path.exists(scratch)


@pytest.mark.parametrize(("how", "reason", "needle"), [
    ("segfault", "signal", "SIGSEGV"),
    ("exit", "exit", "code 3"),
    ("sigkill", "signal", "SIGKILL"),
    ("raise", "exception", "ValueError: boom"),
])
def test_parent_survives_any_child_death(how, reason, needle):
    result = run("crash", {"how": how})
    assert not result.ok
    assert result.reason == reason
    assert needle in result.error
    assert result.events == [{"about_to": how}]


def test_cpu_limit():
    result = run("spin", cpu_s=1, wall_s=60)
    assert (result.reason, result.ok) == ("cpu_limit", False), result.error
    assert "CPU time limit" in result.error


def test_wall_clock_limit():
    result = run("sleep", {"s": 60}, wall_s=1.5)
    assert result.reason == "timeout" and "wall-clock" in result.error
    assert result.wall_s < 10


def test_cancel_from_parent():
    cancel = threading.Event()
    result_box = []

    def on_event(event: dict) -> None:
        cancel.set()  # the child is running: cancel it

    thread = threading.Thread(target=lambda: result_box.append(run_sandboxed(
        "sandbox_targets:sleep", {"s": 60}, Limits(wall_s=60, pythonpath=(HERE,)),
        on_event=on_event, cancel=cancel)))
    thread.start()
    thread.join(30)
    assert result_box and result_box[0].reason == "cancelled"


def test_memory_limit():
    result = run("allocate", memory_mb=600, cpu_s=60, wall_s=60)
    assert result.reason == "memory_limit", (result.reason, result.error)
    assert "MemoryError" in result.error


def test_network_blocked(free_port):
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port))
        server.listen()
        result = run("connect", {"port": free_port})
    assert result.reason == "blocked" and "socket" in result.error


def test_shell_command_blocked_and_host_unchanged(tmp_path):
    marker = tmp_path / "pwned"
    result = run("system", {"cmd": f"touch {marker}"})
    assert result.reason == "blocked" and "os.system" in result.error
    assert not marker.exists()


def test_swallowed_violation_still_fails():
    result = run("swallow", {"path": "/etc/passwd"})
    assert result.value == "swallowed"
    assert not result.ok and result.reason == "blocked"
    assert "/etc/passwd" in result.error


def test_write_outside_scratch_blocked(tmp_path):
    target = tmp_path / "outside.txt"
    result = run("write", {"path": str(target)})
    assert result.reason == "blocked" and str(target) in result.error
    assert not target.exists()


def test_writable_dir_allowed(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run("write", {"path": str(work / "ckpt.txt")}, writable_dirs=(str(work),))
    assert result.ok, result.error
    assert (work / "ckpt.txt").read_text() == "x"


@pytest.mark.skipif(not isolation().drop_uid and os.geteuid() == 0,
                    reason="root without a uid drop: RLIMIT_NPROC is not enforced")
@pytest.mark.skipif(not isolation().prefix, reason="no namespaces on this machine")
def test_fork_bomb_stopped_by_nproc_even_without_the_hook():
    result = run("fork_bomb", {"max": 400}, allow_subprocess=True, max_procs=24)
    assert result.ok, result.error
    assert result.value["children"] < 24 and "Resource temporarily unavailable" in \
        result.value["error"]


@pytest.mark.skipif("--net" not in isolation().prefix, reason="no network namespace here")
def test_network_namespace_has_no_route(free_port):
    code = ("import socket\n"
            f"try: socket.create_connection(('127.0.0.1', {free_port}), timeout=2)\n"
            "except OSError: raise SystemExit(7)\n")
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port))
        server.listen()
        done = subprocess.run([*isolation().prefix, sys.executable, "-c", code], timeout=60)
    assert done.returncode == 7


def test_rlimits_applied():
    result = run("rlimits", cpu_s=5, memory_mb=2048, max_procs=100)
    assert result.ok, result.error
    assert result.value["RLIMIT_CPU"][0] == 5
    assert result.value["RLIMIT_AS"][0] == 2048 * 1024 * 1024
    assert result.value["RLIMIT_NPROC"][0] == 100
    assert result.value["RLIMIT_CORE"] == [0, 0]


@pytest.mark.skipif(not isolation().jail, reason="no file-system jail on this machine")
def test_os_layer_holds_without_the_hook(tmp_path):
    """A shell (which the audit hook cannot see into) still cannot write outside the
    scratch dir, see the host's /tmp, /dev/shm or private dirs, or keep any capability."""
    marker = tmp_path / "from-shell"
    (tmp_path / "host-secret").write_text("secret")
    listings = "; ".join(f"echo {d}: $(ls -A {d} 2>&1)" for d in _private_dirs())
    cmd = (f"touch {marker}; echo write=$?; ls {tmp_path} || echo host-tmp-hidden; "
           f"touch /dev/shm/genesys-probe && echo shm=private; touch /usr/probe; echo usr=$?; "
           f"touch ./inside && echo scratch=ok; grep CapEff /proc/self/status; {listings}")
    result = run("shell", {"cmd": cmd}, allow_subprocess=True)
    assert result.ok, result.error
    out = result.value["out"]
    assert "write=1" in out and "usr=1" in out and "scratch=ok" in out
    assert "host-tmp-hidden" in out and "host-secret" not in out and "shm=private" in out
    assert "CapEff:\t0000000000000000" in out
    assert not marker.exists() and not os.path.exists("/dev/shm/genesys-probe")
    needed = _read_roots(Limits(pythonpath=(HERE,)), str(tmp_path), "sandbox_targets:shell")
    for directory in _private_dirs():  # only the skeleton leading to what the child needs
        shown = out.split(f"{directory}:", 1)[1].splitlines()[0]
        if "No such file" not in shown:
            for entry in shown.split():
                assert any(p.startswith(os.path.join(directory, entry)) for p in needed), entry


def test_graceful_stop_sends_sigterm_then_collects_the_result():
    cancel = threading.Event()
    result = run_sandboxed("sandbox_targets:graceful", {},
                           Limits(wall_s=60, grace_s=10, pythonpath=(HERE,)),
                           on_event=lambda event: cancel.set(), cancel=cancel)
    assert result.reason == "cancelled" and not result.ok
    assert result.value == {"stopped_by_sigterm": True}
    assert result.wall_s < 30


@pytest.mark.skipif(not isolation().jail, reason="no private loopback on this machine")
def test_local_sockets_stay_inside_the_sandbox(free_port):
    with socket.socket() as host_server:
        host_server.bind(("127.0.0.1", free_port))
        host_server.listen()
        result = run("loopback", {"host_port": free_port}, local_sockets=True)
    assert result.ok, result.error
    assert result.value["inside"] == "ping"
    assert result.value["host"].startswith("unreachable")


@pytest.mark.parametrize(("name", "payload", "needle"), [
    ("system", {"cmd": "true"}, "os.system"),
    ("swallow", {"path": "/etc/passwd"}, "/etc/passwd"),
    ("connect", {"port": 9}, "socket"),
])
def test_guard_alone_blocks_without_os_isolation(name, payload, needle):
    """Where namespaces are unavailable (isolate=False is that fallback) the audit-hook
    guard still stops the operation with a clear message."""
    result = run(name, payload, isolate=False)
    assert result.reason == "blocked" and needle in result.error
    assert result.isolation["missing"]


@pytest.mark.skipif(not isolation().jail, reason="no file-system jail on this machine")
def test_home_and_checkout_hidden_but_code_importable():
    checkout = Path(__file__).resolve().parents[2]
    if str(checkout) not in _private_dirs():
        pytest.skip("genesys is installed, not run from a checkout: no checkout to hide")
    cmd = f"ls -A {checkout}; test -e {checkout}/pyproject.toml || echo pyproject-hidden"
    result = run("shell", {"cmd": cmd}, allow_subprocess=True)
    assert result.ok, result.error
    assert "pyproject-hidden" in result.value["out"]
    assert "README.md" not in result.value["out"].split()
    result = run("imports", {"modules": ["genesys.designer", "genesys.design"]})
    assert result.ok, result.error


def session(**limits):
    limits.setdefault("wall_s", 30)
    return open_session("sandbox_targets:echo_session", {}, Limits(pythonpath=(HERE,), **limits))


def test_session_answers_requests_in_order_and_ends_with_the_worker_result():
    with session() as box:
        assert [box.call("add", a=i, b=10)["sum"] for i in range(20)] == list(range(10, 30))
    assert box.result.ok and box.result.value == {"served": 20}


def test_session_measures_worker_cpu_from_outside():
    with session() as box:
        box.call("add")
        before = box.worker_cpu_s()
        box.call("spin", s=0.3)
        spent = box.worker_cpu_s() - before
    assert 0.25 <= spent <= 1.5


def test_session_crash_and_timeout_surface_in_the_caller():
    box = session()
    with pytest.raises(SessionClosed) as ended:
        box.call("crash")
    assert ended.value.result.reason == "exception" and "asked to crash" in str(ended.value)
    box = session()
    with pytest.raises(TimeoutError):
        box.call("hang", timeout=0.5)
    assert box.close().reason == "cancelled"
    with pytest.raises(SessionClosed):
        box.call("add")

"""Hostile targets against the sandbox's layers: each attempt is refused or contained with a
reason that names it, and the host is checked afterwards (no file outside scratch, no
secret in any output, no process left)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from genesys.lmade.sandbox import (
    MAX_OUTPUT_BYTES,
    MAX_VIOLATIONS_KEPT,
    SANDBOX_UID_BASE,
    Limits,
    SandboxResult,
    isolation,
    run_sandboxed,
)

HERE = str(Path(__file__).resolve().parent)
needs_jail = pytest.mark.skipif(not isolation().jail, reason="no allowlist jail on this host "
                                "(needs unshare with user or root namespaces and setpriv)")
needs_seccomp = pytest.mark.skipif(not isolation().seccomp,
                                   reason="no libseccomp binding (python3-seccomp/pyseccomp)")
needs_cgroup = pytest.mark.skipif(not isolation().cgroup,
                                  reason="no cgroup limits here (needs root and cgroup v1, or "
                                         "delegated cgroup v2)")


def run(name: str, payload: dict | None = None, module: str = "hostile_targets",
        **limits) -> SandboxResult:
    limits.setdefault("wall_s", 30)
    return run_sandboxed(f"{module}:{name}", payload or {}, Limits(pythonpath=(HERE,), **limits))


def everything_said(result: SandboxResult) -> str:
    """All that the child's run sends back to trusted code, as one text."""
    return json.dumps(result.to_dict(), default=str)


def processes_running(argument: str) -> list[int]:
    """Host processes with ``argument`` in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if argument.encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


@pytest.fixture
def secret_files(tmp_path):
    """Secrets where the sandbox uid could read them on an open host: a world-readable file
    in the host's temp dir and one in the parent's home."""
    token = secrets.token_hex(16)
    in_tmp = tmp_path / "secret.txt"
    in_tmp.write_text(token)
    in_tmp.chmod(0o644)
    in_home = Path.home() / f".genesys-jail-test-{token[:8]}"
    in_home.write_text(token)
    yield token, [str(in_tmp), str(in_home)]
    in_home.unlink()


def test_guard_reads_no_str_subclass_and_stays_on():
    result = run("guard_reentry", {"path": "/etc/hostname"})
    assert result.value["ran"] == [], "design code ran inside the audit hook"
    assert result.value["first"] == result.value["second"] == "SandboxViolation"
    assert result.reason == "blocked" and "type _Hook" in result.error


def test_guard_holds_against_a_racing_thread():
    result = run("guard_race", {"path": "/etc/passwd", "tries": 300})
    assert result.value == {"read": 0, "tries": 300}
    assert result.reason == "blocked" and "/etc/passwd" in result.error


@needs_jail
def test_native_reads_see_no_host_file(secret_files):
    token, paths = secret_files
    result = run("native_read", {"paths": [*paths, "/etc/passwd"], "size": 32},
                 module="hostile_native", wall_s=60)
    assert result.ok, (result.error, result.traceback)
    for path in paths:
        assert "No such file" in result.value[path] or "Error" in result.value[path]
    assert "root:" not in result.value["/etc/passwd"]  # the jail's own passwd, no host users
    assert token not in everything_said(result)


@needs_jail
def test_no_host_unix_socket_is_reachable(tmp_path):
    path = str(tmp_path / "host.sock")
    got: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.settimeout(0.2)

        def accept() -> None:
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100))
            except OSError:
                pass

        thread = threading.Thread(target=accept)
        thread.start()
        result = run("unix_connect", {"path": path}, local_sockets=True)
        thread.join()
    assert "FileNotFoundError" in result.value, result.value
    assert got == []


@needs_jail
def test_links_planted_in_a_writable_dir_do_not_redirect_the_parent(tmp_path):
    """A run leaves links to host files in its writable dir; the next run's trusted setup
    (chown to the new sandbox uid) must not touch what they point at."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("host data")
    victim.chmod(0o600)
    links = {"result.json": str(victim), "dir": str(tmp_path)}
    first = run("plant_links", {"dir": str(out), "links": links}, writable_dirs=(str(out),))
    assert first.ok, first.error
    second = run("plant_links", {"dir": str(out), "links": {}}, writable_dirs=(str(out),))
    assert second.ok, second.error
    st = victim.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode), victim.read_text()) == (0, 0o600, "host data")
    assert os.stat(tmp_path).st_uid == 0


@needs_jail
def test_scratch_quota_stops_a_disk_flood():
    result = run("fill_disk", {"mb": 256}, scratch_mb=32, memory_mb=1024)
    assert result.ok, result.error
    assert result.value["errno"] == 28 and result.value["written_mb"] <= 32  # ENOSPC


@needs_cgroup
def test_cgroup_memory_limit_counts_tmpfs_pages():
    """RLIMIT_AS cannot see the pages of a tmpfs; the cgroup can, and the kernel stops the
    run (scratch allowed to grow past the memory limit here)."""
    result = run("fill_disk", {"mb": 1024}, memory_mb=256, scratch_mb=4096, wall_s=60)
    assert result.reason == "memory_limit", (result.reason, result.error, result.value)
    assert "cgroup" in result.error


def test_stdout_flood_stops_the_child_and_keeps_a_short_tail():
    result = run("flood_stdout", {"mb": 2 * (MAX_OUTPUT_BYTES >> 20)})
    assert result.reason == "flood" and "stdout/stderr" in result.error
    assert result.value is None and len(result.output_tail) <= 4000


def test_an_oversized_message_line_is_a_flood():
    result = run("flood_line", {"mb": 20}, memory_mb=None)
    assert result.reason == "flood" and "message line" in result.error


def test_violations_are_capped_and_a_violation_flood_stops_the_child():
    result = run("flood_violations", {"n": 3000})
    assert result.reason == "flood" and "blocked operations" in result.error
    assert len(result.violations) == MAX_VIOLATIONS_KEPT


@needs_jail
def test_no_process_outlives_the_run():
    tag = f"60.{secrets.randbelow(10**9)}"
    result = run("leave_process", {"tag": tag}, allow_subprocess=True)
    assert result.ok, result.error
    assert processes_running(tag) == []


@needs_seccomp
def test_seccomp_refuses_raw_syscalls():
    result = run("raw_syscalls", allow_ctypes=True)
    assert result.ok, result.error
    assert result.value == {"execve": "EPERM", "unshare": "EPERM", "netlink": "EPERM",
                            "ptrace": "EPERM", "unix": "allowed"}


@needs_jail
def test_concurrent_sandboxes_get_their_own_uids():
    results: list[SandboxResult] = []
    threads = [threading.Thread(target=lambda: results.append(run("hold", {"s": 1.5})))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if isolation().drop_uid:
        uids = [r.isolation["uid"] for r in results]
        assert [r.value for r in results] == uids
        assert len(set(uids)) == 3 and all(u >= SANDBOX_UID_BASE for u in uids)


@needs_jail
def test_the_sandbox_dies_with_its_parent():
    """A trusted parent killed outright (no cleanup runs) takes its sandbox with it."""
    tag = f"60.{secrets.randbelow(10**9)}"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from genesys.lmade.sandbox import "
            "Limits, run_sandboxed; run_sandboxed('hostile_targets:become_sleep', "
            "{'tag': sys.argv[2][4:]}, Limits(pythonpath=(sys.argv[1],), allow_subprocess=True, "
            "wall_s=120))")
    parent = subprocess.Popen([sys.executable, "-c", code, HERE, f"tag={tag}"])
    try:
        deadline = time.monotonic() + 30
        while not processes_running(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_running(tag), "the sandboxed worker did not start"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while processes_running(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_running(tag) == []


@needs_jail
def test_a_writable_dir_replaced_by_a_link_is_neither_chowned_nor_mounted(tmp_path):
    """An earlier run (with the job dir writable) replaced the out dir below it by a link
    to a host dir, relative so that it would lead back into the host's root from inside
    the jail's staging; the next run must not chown or mount what it points at."""
    job = tmp_path / "job"
    job.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "host.txt").write_text("host data")
    hops = "../" * (len(job.parts) + 1)
    (job / "run").symlink_to(f"{hops}.oldroot{victim}")
    result = run("read_then_write", {"read": str(job / "run" / "host.txt"),
                                     "write": str(job / "run" / "pwned.txt")},
                 scratch_dir=str(job), writable_dirs=(str(job / "run"),))
    assert not result.ok
    assert not (victim / "pwned.txt").exists()
    assert victim.stat().st_uid == 0 and (victim / "host.txt").stat().st_uid == 0
    assert "host data" not in everything_said(result)
    assert any("symbolic link" in e for e in result.isolation.get("jail_errors", []))


def test_a_large_message_under_the_line_cap_arrives_whole():
    result = run("flood_line", {"mb": 10}, memory_mb=None)
    assert result.ok, result.error
    assert len(result.events[0]["big"]) == 10 << 20

"""The sandbox child: a tiny supervisor that forks one worker to run the target.

Started by ``genesys.lmade.sandbox`` as a script (``python -s .../sandbox_child.py EVENTS
STATUS CONTROL REQUESTS [JAIL]``), inside fresh namespaces when the OS allows, so the supervisor never
imports torch and is PID 1 of the sandbox's PID namespace. With a JAIL config it first
runs ``sandbox_jail`` (read-only file system, privileges dropped) and re-execs itself. It reads its request (JSON) from stdin,
forks the worker and reports how the worker ended (exit code or signal, CPU seconds, peak
RSS) on the STATUS pipe, which the worker does not hold; a "term" line on the CONTROL
pipe makes it send SIGTERM to the worker (graceful stop). The worker sets the resource
limits, imports the target's module (trusted code), installs the audit-hook guard, then
calls ``target(payload, emit)`` and sends events and the result on the EVENTS pipe as
JSON lines. In a session (``sandbox.open_session``) it calls ``target(payload, emit, inbox)``
instead: the inbox yields the parent's requests from the REQUESTS pipe, and each is answered
with ``request.reply(**data)`` on the EVENTS pipe.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import threading
import traceback

if __name__ == "__main__":
    # Run as a script: import the guard from this folder without importing genesys.lmade
    # (whose __init__ imports torch), then drop the folder from the import path.
    import sandbox_guard  # type: ignore[import-not-found]
    import sandbox_jail  # type: ignore[import-not-found]
    import sandbox_seccomp  # type: ignore[import-not-found]

    del sys.path[0]
    sys.modules["genesys.lmade.sandbox_guard"] = sandbox_guard  # one SandboxViolation class
else:
    from genesys.lmade import sandbox_guard, sandbox_seccomp

_MB = 1024 * 1024


class Channel:
    """Newline-delimited JSON messages to the parent over an inherited pipe."""

    def __init__(self, fd: int, nonce: str):
        self.fd = fd
        self.nonce = nonce

    def send(self, kind: str, **fields: object) -> None:
        line = json.dumps({"kind": kind, "nonce": self.nonce, **fields}, default=repr) + "\n"
        data = line.encode()
        while data:
            data = data[os.write(self.fd, data):]

    def event(self, data: dict) -> None:
        self.send("event", data=data)


class Request:
    """One request of the trusted parent: ``op`` names what it wants, ``data`` its inputs."""

    def __init__(self, ident: int, op: str, data: dict, channel: Channel):
        self.id, self.op, self.data = ident, op, data
        self._channel = channel

    def reply(self, **data: object) -> None:
        self._channel.send("reply", id=self.id, data=data)


class Inbox:
    """The parent's requests, in order, until it closes the pipe (end of the session)."""

    def __init__(self, fd: int, channel: Channel):
        self._stream = os.fdopen(fd, "rb")
        self._channel = channel

    def __iter__(self):
        for line in self._stream:
            message = json.loads(line)
            yield Request(int(message["id"]), str(message["op"]), dict(message["data"]),
                          self._channel)


def _set_limits(limits: dict) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave a core file
    if limits.get("cpu_s"):
        cpu = int(limits["cpu_s"] + 0.999)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if limits.get("memory_mb"):
        # CUDA reserves huge address ranges, so on GPUs only data mappings are limited.
        which = resource.RLIMIT_DATA if limits.get("cuda") else resource.RLIMIT_AS
        mem = int(limits["memory_mb"]) * _MB
        resource.setrlimit(which, (mem, mem))
    if limits.get("max_procs"):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_procs"],) * 2)
    if limits.get("max_file_mb"):
        size = int(limits["max_file_mb"]) * _MB
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises EFBIG


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(request: dict, channel: Channel, requests_fd: int) -> None:
    limits = request["limits"]
    _set_limits(limits)
    _die_with_parent()
    sys.path[:0] = request["pythonpath"]
    module_name, _, attr = request["target"].partition(":")
    target = getattr(importlib.import_module(module_name), attr)
    violations: list[str] = []

    def report(operation: str, detail: str) -> None:
        violations.append(operation)
        channel.send("violation", operation=operation, detail=detail)

    if request.get("seccomp"):
        sockets = "any" if limits.get("network") else \
            "local" if limits.get("local_sockets") else "unix"
        sandbox_seccomp.install(allow_exec=limits.get("allow_subprocess", False), sockets=sockets)
    if not limits.get("trusted"):
        sandbox_guard.install(
            request["read_roots"], request["write_roots"], report,
            allow_subprocess=limits.get("allow_subprocess", False),
            allow_network=limits.get("network", False) or limits.get("local_sockets", False),
            allow_ctypes=limits.get("allow_ctypes", False),
        )
    args: tuple = (request["payload"], channel.event)
    if request.get("session"):
        args += (Inbox(requests_fd, channel),)
    else:
        os.close(requests_fd)
    try:
        value = target(*args)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        _send_error(channel, exc, "blocked" if violations else None)
        return
    channel.send("result", value=value)


def _send_error(channel: Channel, exc: BaseException, reason: str | None = None) -> None:
    channel.send(
        "error",
        reason=reason or sandbox_guard.failure_reason(exc),
        error=f"{type(exc).__name__}: {exc}",
        traceback=traceback.format_exc(limit=-30),
    )


def _supervise(pid: int, status_fd: int) -> None:
    _, status, usage = os.wait4(pid, 0)
    ended: dict[str, object] = {"cpu_s": usage.ru_utime + usage.ru_stime,
                                "peak_rss_mb": usage.ru_maxrss / 1024}
    if os.WIFSIGNALED(status):
        ended["signal"] = os.WTERMSIG(status)
    else:
        ended["code"] = os.WEXITSTATUS(status)
    os.write(status_fd, (json.dumps({"kind": "exit", **ended}) + "\n").encode())


def _forward_stop_requests(control_fd: int, pid: int) -> None:
    """Relay the parent's graceful-stop request (a line on the control pipe) as SIGTERM.
    The pipe's end (the parent closed it, or died) kills the worker and this supervisor,
    PID 1 of the sandbox, so the whole sandbox goes (a death signal from the launcher does
    not survive the uid change)."""

    def relay() -> None:
        while data := os.read(control_fd, 64):
            if b"term" in data:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os._exit(1)

    threading.Thread(target=relay, daemon=True).start()


def main() -> None:
    events_fd, status_fd, control_fd, requests_fd = (int(a) for a in sys.argv[1:5])
    if len(sys.argv) > 5:  # stage one: jail the file system, then exec stage two
        config = json.loads(sys.argv[5])
        errors = sandbox_jail.enter(config)
        os.write(status_fd, (json.dumps({"kind": "jail", "errors": errors}) + "\n").encode())
        sandbox_jail.exec_stage_two(config, [sys.executable, "-s", *sys.argv[:5]])
    request = json.loads(sys.stdin.buffer.read())
    os.chdir(request["scratch"])
    for sig in (signal.SIGTERM, signal.SIGINT):  # only the worker reacts to stop signals
        signal.signal(sig, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.close(status_fd)
        os.close(control_fd)
        channel = Channel(events_fd, request["nonce"])
        try:
            _worker(request, channel, requests_fd)
        except BaseException as exc:  # noqa: BLE001 - setup failures go to the parent too
            _send_error(channel, exc)
        finally:
            os._exit(0)  # skip interpreter teardown: no design finalizers run after the result
    os.close(events_fd)
    os.close(requests_fd)
    _forward_stop_requests(control_fd, pid)
    _supervise(pid, status_fd)
    os._exit(0)


if __name__ == "__main__":
    main()

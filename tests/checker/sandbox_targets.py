"""Trusted-looking targets that misbehave, run by the sandbox tests in a child process."""

from __future__ import annotations

import os
import signal
import socket
import time


def echo(payload: dict, emit) -> dict:
    for i in range(payload.get("events", 0)):
        emit({"step": i})
    return {"echo": payload, "cwd": os.getcwd(), "uid": os.getuid(),
            "env": sorted(os.environ)}


def crash(payload: dict, emit) -> None:
    emit({"about_to": payload["how"]})
    how = payload["how"]
    if how == "segfault":
        import faulthandler

        faulthandler._sigsegv()
    elif how == "exit":
        os._exit(3)
    elif how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "raise":
        raise ValueError("boom")
    time.sleep(5)


def spin(payload: dict, emit) -> None:
    while True:
        pass


def sleep(payload: dict, emit) -> None:
    emit({"sleeping": True})
    time.sleep(payload.get("s", 60))


def allocate(payload: dict, emit) -> None:
    chunks = []
    while True:
        chunks.append(bytearray(64 * 1024 * 1024))


def fork_bomb(payload: dict, emit) -> dict:
    children = 0
    try:
        while children < payload.get("max", 10_000):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
    except OSError as exc:
        return {"children": children, "error": str(exc)}
    return {"children": children}


def connect(payload: dict, emit) -> None:
    socket.create_connection(("127.0.0.1", payload["port"]), timeout=2)


def swallow(payload: dict, emit) -> str:
    try:
        open(payload["path"]).read()
    except Exception:
        pass
    return "swallowed"


def write(payload: dict, emit) -> str:
    with open(payload["path"], "w") as f:
        f.write("x")
    return "written"


def system(payload: dict, emit) -> int:
    return os.system(payload["cmd"])


def rlimits(payload: dict, emit) -> dict:
    import resource

    return {name: resource.getrlimit(getattr(resource, name))
            for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE")}


def shell(payload: dict, emit) -> dict:
    import subprocess

    done = subprocess.run(payload["cmd"], shell=True, capture_output=True, text=True)
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr}


def graceful(payload: dict, emit) -> dict:
    """Sleeps until SIGTERM, then returns what it saved (like a trainer's checkpoint)."""
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    emit({"running": True})
    deadline = time.monotonic() + 60
    while not stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"stopped_by_sigterm": bool(stopped)}


def loopback(payload: dict, emit) -> dict:
    """A server and a client inside the sandbox, then an attempt to leave it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            peer, _ = server.accept()
            client.sendall(b"ping")
            got = peer.recv(4)
            peer.close()
    try:
        socket.create_connection(("127.0.0.1", payload["host_port"]), timeout=2).close()
        host = "reached"
    except OSError as exc:
        host = f"unreachable: {exc}"
    return {"inside": got.decode(), "host": host}


def imports(payload: dict, emit) -> list[str]:
    """Import modules by name inside the child (code folders must stay visible)."""
    import importlib

    return [importlib.import_module(name).__name__ for name in payload["modules"]]


def echo_session(payload, emit, inbox):
    """Session target: "add" answers a sum, "spin" burns CPU, "hang" never answers,
    "crash" raises; returns how many requests it served."""
    served = 0
    for request in inbox:
        served += 1
        if request.op == "crash":
            raise RuntimeError("asked to crash")
        if request.op == "hang":
            time.sleep(3600)
        if request.op == "spin":
            end = time.process_time() + request.data["s"]
            while time.process_time() < end:
                pass
        request.reply(sum=request.data.get("a", 0) + request.data.get("b", 0))
    return {"served": served}

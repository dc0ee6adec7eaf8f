"""Run untrusted code (designs, verification jobs) in a limited child process.

``run_sandboxed("pkg.module:function", payload, Limits(...))`` starts a fresh interpreter
(``sandbox_child.py``) rather than a multiprocessing child: a fresh process inherits no
parent state (threads, open files, imported design modules, secrets in memory), can be
wrapped in ``unshare``/``setpriv``, and gets a scrubbed environment. The target is called
as ``function(payload, emit)``; ``emit(dict)`` streams progress events to ``on_event`` and
the return value (JSON-able) comes back in ``SandboxResult.value``.

``open_session(target, payload, limits)`` starts the same child for a conversation: the
target is called as ``function(payload, emit, inbox)`` and answers the requests that the
trusted parent sends with ``Session.call(op, **data)``; this is how graders ask design code
for raw outputs on inputs they choose, without running any of it in their own process.

This module needs only the standard library (the GPU agent loads it without torch).

Layers, strongest first (``isolation()`` says which this machine provides):
- namespaces via ``unshare``: a network namespace with only its own loopback (nothing
  outside is reachable), a PID namespace whose init is the supervisor (every process the
  code starts dies with it) and its own /proc; as a normal user also a user namespace.
- the jail (``sandbox_jail``, needs ``mount`` and ``setpriv``): every mount read-only
  except the scratch and writable dirs, directories other users cannot enter (e.g. /root)
  replaced by an empty tmpfs with only the needed paths bound back, all capabilities
  dropped and, for a root parent, an unprivileged uid (so RLIMIT_NPROC applies: root
  ignores it). Without namespaces the child runs with the rlimits and the guard only.
- rlimits in the worker: CPU seconds, address space (data segment with CUDA), processes
  and threads, file size, no core files.
- the audit-hook guard (``sandbox_guard``): clear messages for blocked sockets, process
  starts, ctypes, reads outside the allowed roots and writes outside the scratch dir.
- the parent: wall-clock limit, cancellation, and it survives any death of the child.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import os
import secrets
import selectors
import shutil
import signal
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SANDBOX_UID = 65534  # "nobody": the uid a root parent drops the child to
_CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
_PACKAGE_DIR = Path(__file__).resolve().parent
_MAX_EVENTS_KEPT = 1000
_MAX_LINE = 64 * 1024 * 1024
_STDERR_TAIL = 4000
_DRAIN_AFTER_EXIT_S = 1.0  # how long pipes are read after the child exited
_GENESYS_SUBPACKAGES = ("lmade", "designer", "gpu_agent", "server", "llm_gateway")


@dataclass(frozen=True)
class Limits:
    """What a sandboxed run may use. None switches a limit off."""

    wall_s: float = 60.0
    cpu_s: float | None = None  # default: wall_s x CPU count
    memory_mb: int | None = 4096  # address space (RLIMIT_DATA instead when cuda=True)
    max_procs: int | None = 512  # processes + threads of the sandbox uid (RLIMIT_NPROC)
    max_file_mb: int | None = 1024  # largest file the child may write (RLIMIT_FSIZE)
    threads: int | None = None  # OMP/MKL threads
    network: bool = False  # the host's network (no network namespace, sockets allowed)
    local_sockets: bool = False  # sockets inside the sandbox's own loopback only (e.g. DDP)
    allow_subprocess: bool = False  # e.g. torch.compile, which runs a C compiler
    allow_ctypes: bool = False
    cuda: bool = False  # pass CUDA_VISIBLE_DEVICES through instead of hiding GPUs
    writable_dirs: tuple[str, ...] = ()  # besides the scratch dir (chowned when dropping uid)
    readable_dirs: tuple[str, ...] = ()  # besides the interpreter, site-packages, genesys
    pythonpath: tuple[str, ...] = ()  # where to import the target from, if not installed
    pass_env: tuple[str, ...] = ()  # names copied from the parent environment
    env: Mapping[str, str] = field(default_factory=dict)
    scratch_dir: str | None = None  # kept afterwards; default: a temp dir removed after
    isolate: bool = True  # use namespaces / uid drop where the OS allows
    hidden_dirs: tuple[str, ...] = ()  # also hidden (besides home and source checkout)
    grace_s: float = 0.0  # on timeout or cancel: SIGTERM the worker, kill it this much later
    trusted: bool = False  # the target is trusted code that runs no design code (e.g. the
    # agent's grader, which opens sandboxes of its own): no audit guard, only the plumbing

    def to_json(self) -> dict:
        return {**asdict(self), "env": dict(self.env)}

    @classmethod
    def from_json(cls, data: dict) -> Limits:
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                      if k in names})


@dataclass
class SandboxResult:
    """How a sandboxed run ended. ``reason`` is one of: ok, exception, blocked, timeout,
    cpu_limit, memory_limit, signal, exit, cancelled, start_failed; ``error`` says it in
    words, ``violations`` lists blocked operations (even ones the code swallowed)."""

    ok: bool
    value: Any = None
    reason: str = "ok"
    error: str = ""
    traceback: str = ""
    events: list[dict] = field(default_factory=list)
    violations: list[dict] = field(default_factory=list)
    exit_code: int | None = None
    signal: int | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    wall_s: float = 0.0
    output_tail: str = ""
    isolation: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """The OS layer this machine offers: the namespace command and what it enforces."""

    prefix: tuple[str, ...]  # the unshare command, () when namespaces are unavailable
    jail: bool  # read-only file system + capability drop (sandbox_jail) in the child
    drop_uid: bool  # the child runs as SANDBOX_UID (root parents only)
    enforced: tuple[str, ...]
    missing: tuple[str, ...]

    def describe(self) -> dict:
        return {"enforced": list(self.enforced), "missing": list(self.missing)}


_NO_ISOLATION = Isolation((), False, False, ("audit hook", "rlimits"),
                          ("namespaces", "read-only file system", "RLIMIT_NPROC for root"))


def _probe(cmd: list[str]) -> bool:
    """Does this prefix start our interpreter with its own standard library?"""
    same_python = f"import sys; sys.exit(sys.base_prefix != {sys.base_prefix!r})"
    try:
        return subprocess.run(cmd + [sys.executable, "-c", same_python], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def isolation() -> Isolation:
    """Find the strongest OS isolation that works here (probed once per process)."""
    unshare, setpriv, mount = (shutil.which(n) for n in ("unshare", "setpriv", "mount"))
    root = os.geteuid() == 0
    user = [] if root else ["--user", "--map-root-user"]
    prefix = [unshare, *user, "--net", "--pid", "--kill-child", "--mount-proc", "--"]
    if not unshare or not _probe(prefix):
        return _NO_ISOLATION
    enforced = ["network namespace (loopback only)", "pid namespace"] + ([] if root else
                                                                        ["user namespace"])
    if not (setpriv and mount):
        return Isolation(tuple(prefix), False, False, tuple(enforced),
                         ("read-only file system (needs setpriv and mount)",)
                         + (("RLIMIT_NPROC for root",) if root else ()))
    enforced += ["read-only file system outside scratch and writable dirs",
                 "unsearchable dirs hidden", "no capabilities", "RLIMIT_NPROC"]
    if root:
        enforced.append(f"uid {SANDBOX_UID}")
    return Isolation(tuple(prefix), True, root, tuple(enforced), ())


def _private_dirs() -> tuple[str, ...]:
    """Dirs hidden by default: the parent's home (tokens, keys, caches) and the source
    checkout holding this package, minus what the child needs from them."""
    dirs = [os.path.expanduser("~")]
    checkout = next((p for p in _PACKAGE_DIR.parents if (p / ".git").exists()), None)
    if checkout is not None:
        dirs.append(str(checkout))
    return tuple(os.path.realpath(d) for d in dirs if d not in ("/", "~"))


def _code_dirs(target: str) -> list[str]:
    """Folders the child imports code from: every genesys subpackage (an editable install
    maps them to separate folders) and the target's own top-level package."""
    names = [f"genesys.{sub}" for sub in _GENESYS_SUBPACKAGES]
    top = target.split(":")[0].split(".")[0]
    if top != "genesys":
        names.append(top)
    dirs = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)  # imports at most the parent package
        except (ImportError, ValueError):
            continue
        if spec is not None:
            dirs += list(spec.submodule_search_locations or [])
            if spec.origin and not spec.submodule_search_locations:
                dirs.append(os.path.dirname(spec.origin))
    return dirs


def _hidden_dirs(paths: list[str], private: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Dirs to cover with an empty tmpfs -> the needed paths to bind back beneath them:
    ancestors of needed paths that other users cannot enter, and the private dirs."""
    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    hide: dict[str, list[str]] = {}
    for root in private:
        if os.path.isdir(root) and not any(under(root, p) for p in paths):
            hide[root] = []
    for path in sorted(set(paths)):
        covering = [h for h in hide if under(path, h)]
        if not covering:
            for ancestor in reversed(Path(path).parents[:-1]):  # from the top, skipping "/"
                if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                    covering = [str(ancestor)]
                    break
        for root in covering[:1]:
            keep = hide.setdefault(root, [])
            if not any(under(path, k) for k in keep):
                keep.append(path)
    return dict(sorted(hide.items()))


def _jail_config(limits: Limits, scratch: str, read_roots: list[str]) -> dict:
    writable = [os.path.realpath(p) for p in (scratch, *limits.writable_dirs)]
    return {
        "mount": shutil.which("mount"), "setpriv": shutil.which("setpriv"),
        "uid": SANDBOX_UID if isolation().drop_uid else None,
        "writable": writable,
        "hide": _hidden_dirs([p for p in read_roots + writable if os.path.exists(p)],
                             _private_dirs() + tuple(limits.hidden_dirs)),
        "parent_mnt_ns": os.readlink("/proc/self/ns/mnt"),
        "loopback": not limits.network,
    }


def _read_roots(limits: Limits, scratch: str, target: str = "") -> list[str]:
    paths = sysconfig.get_paths()
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"],
             str(_PACKAGE_DIR), *site.getsitepackages(), *limits.readable_dirs,
             *limits.pythonpath, scratch, *_code_dirs(target)]
    import genesys

    roots += list(genesys.__path__)
    return [os.path.realpath(r) for r in roots if r]


def _child_env(limits: Limits, scratch: str) -> dict[str, str]:
    tmp = os.path.join(scratch, "tmp")
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": scratch, "TMPDIR": tmp, "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MALLOC_ARENA_MAX": "2",
        "HF_HOME": os.path.join(scratch, ".hf"), "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "XDG_CACHE_HOME": os.path.join(scratch, ".cache"),
        "TORCHINDUCTOR_CACHE_DIR": os.path.join(scratch, ".cache", "inductor"),
        "TRITON_CACHE_DIR": os.path.join(scratch, ".cache", "triton"),
        "MPLCONFIGDIR": os.path.join(scratch, ".cache", "matplotlib"),
    }
    pythonpath = [*limits.pythonpath, *filter(None, os.environ.get("PYTHONPATH", "").split(
        os.pathsep))]
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    if limits.threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(limits.threads)
    gpu_env = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME")
    if limits.cuda:
        env.update({k: os.environ[k] for k in gpu_env if k in os.environ})
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update({k: os.environ[k] for k in limits.pass_env if k in os.environ})
    env.update(limits.env)
    return env


def _chown_tree(path: str, uid: int) -> None:
    os.chown(path, uid, uid)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Run:
    """One sandboxed child: start it, pump its pipes, enforce the clock, collect the end."""

    def __init__(self, target: str, payload: dict, limits: Limits,
                 on_event: Callable[[dict], None] | None, cancel: threading.Event | None):
        self.target, self.payload, self.limits = target, payload, limits
        self.on_event, self.cancel = on_event, cancel
        self.iso = isolation() if limits.isolate else _NO_ISOLATION
        self.nonce = secrets.token_hex(16)
        self.events: collections.deque[dict] = collections.deque(maxlen=_MAX_EVENTS_KEPT)
        self.violations: list[dict] = []
        self.final: dict | None = None  # the worker's result or error message
        self.exit: dict | None = None  # the supervisor's report on how the worker ended
        self.stopped: str | None = None  # timeout / cancelled when the parent killed it
        self.jail_errors: list[str] = []
        self.session: Session | None = None  # set when the parent converses with the worker
        self.worker_pid: int | None = None  # host pid of the worker, once it has started

    def run(self) -> SandboxResult:
        started = time.monotonic()
        own_scratch = self.limits.scratch_dir is None
        scratch = tempfile.mkdtemp(prefix="genesys-sandbox-") if own_scratch else \
            self.limits.scratch_dir
        os.makedirs(os.path.join(scratch, "tmp"), exist_ok=True)
        try:
            if self.iso.drop_uid:
                for path in (scratch, *self.limits.writable_dirs):
                    _chown_tree(path, SANDBOX_UID)
            with tempfile.TemporaryFile() as output:
                result = self._execute(scratch, output)
                output.seek(max(0, output.seek(0, os.SEEK_END) - _STDERR_TAIL))
                result.output_tail = output.read().decode(errors="replace")
        finally:
            if own_scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        result.wall_s = time.monotonic() - started
        result.isolation = self.iso.describe()
        if self.jail_errors:
            result.isolation["jail_errors"] = self.jail_errors
        return result

    def _request(self, scratch: str, read_roots: list[str]) -> bytes:
        limits = asdict(self.limits)
        limits["cpu_s"] = self.limits.cpu_s or self.limits.wall_s * (os.cpu_count() or 1)
        limits["env"] = {}
        return json.dumps({
            "target": self.target, "payload": self.payload, "limits": limits,
            "session": self.session is not None,
            "nonce": self.nonce, "scratch": scratch, "pythonpath": list(self.limits.pythonpath),
            "read_roots": read_roots, "write_roots": [scratch, *self.limits.writable_dirs],
        }).encode()

    def _execute(self, scratch: str, output: Any) -> SandboxResult:
        events_r, events_w = os.pipe()
        status_r, status_w = os.pipe()
        control_r, control_w = os.pipe()
        requests_r, requests_w = os.pipe()
        child_fds = (events_w, status_w, control_r, requests_r)
        read_roots = _read_roots(self.limits, scratch, self.target)
        prefix = [a for a in self.iso.prefix if not (self.limits.network and a == "--net")]
        cmd = [*prefix, sys.executable, "-s", str(_CHILD_SCRIPT), *map(str, child_fds)]
        if self.iso.jail:
            cmd.append(json.dumps(_jail_config(self.limits, scratch, read_roots)))
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=output, stderr=output, cwd=scratch,
                env=_child_env(self.limits, scratch), pass_fds=child_fds,
                start_new_session=True)
        except OSError as exc:
            for fd in (events_r, status_r, control_w, requests_w, *child_fds):
                os.close(fd)
            return SandboxResult(False, reason="start_failed", error=f"cannot start: {exc}")
        for fd in child_fds:
            os.close(fd)
        if self.session is not None:
            self.session._attach(requests_w, proc.pid)
        else:
            os.close(requests_w)  # the worker reads end-of-file: no requests will come
        threading.Thread(target=self._feed, args=(proc, self._request(scratch, read_roots)),
                         daemon=True).start()
        try:
            self._pump(proc, {events_r: self._on_line, status_r: self._on_status}, control_w)
        finally:
            self._kill(proc)
            for fd in (events_r, status_r, control_w):
                os.close(fd)
            if self.session is not None:
                self.session._detach()
        return self._outcome(proc)

    @staticmethod
    def _feed(proc: subprocess.Popen, request: bytes) -> None:
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except OSError:
            pass  # the child died before reading; its exit tells the story

    def _pump(self, proc: subprocess.Popen, handlers: dict[int, Callable[[dict], None]],
              control_fd: int) -> None:
        deadline = time.monotonic() + self.limits.wall_s
        buffers = {fd: b"" for fd in handlers}
        exited_at: float | None = None
        with selectors.DefaultSelector() as sel:
            for fd in handlers:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if self.stopped is None:
                    if now >= deadline:
                        self.stopped = "timeout"
                    elif self.cancel is not None and self.cancel.is_set():
                        self.stopped = "cancelled"
                    if self.stopped is not None:
                        if self.limits.grace_s <= 0 or not self._request_stop(control_fd):
                            return
                        deadline = now + self.limits.grace_s
                elif now >= deadline:
                    return  # the grace period is over
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > _DRAIN_AFTER_EXIT_S:
                    return  # a stray grandchild holds a pipe open
                for key, _ in sel.select(timeout=max(0.0, min(0.2, deadline - now))):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    *lines, buffers[key.fd] = (buffers[key.fd] + chunk).split(b"\n")
                    if len(buffers[key.fd]) > _MAX_LINE:
                        buffers[key.fd] = b""  # a runaway writer; drop the garbage
                    for line in lines:
                        self._dispatch(line, handlers[key.fd])

    @staticmethod
    def _request_stop(control_fd: int) -> bool:
        """Ask the supervisor to SIGTERM the worker; False if it is already gone."""
        try:
            os.write(control_fd, b"term\n")
            return True
        except OSError:
            return False

    @staticmethod
    def _dispatch(line: bytes, handler: Callable[[dict], None]) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if isinstance(message, dict):
            handler(message)

    def _on_line(self, message: dict) -> None:
        if message.get("nonce") != self.nonce:
            return  # not written by the worker's channel
        kind = message.get("kind")
        if kind == "event" and isinstance(message.get("data"), dict):
            self.events.append(message["data"])
            if self.on_event is not None:
                self.on_event(message["data"])
        elif kind == "violation":
            self.violations.append({"operation": message.get("operation"),
                                    "detail": message.get("detail"),
                                    "after_event": self.events[-1] if self.events else None})
        elif kind == "reply" and self.session is not None:
            self.session._on_reply(message)
        elif kind in ("result", "error") and self.final is None:
            self.final = message

    def _on_status(self, message: dict) -> None:
        if message.get("kind") == "exit":
            self.exit = message
        elif message.get("kind") == "jail":
            self.jail_errors = [str(e) for e in message.get("errors", [])]

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    def _outcome(self, proc: subprocess.Popen) -> SandboxResult:
        exit_info = self.exit or {}
        result = SandboxResult(
            False, events=list(self.events), violations=self.violations,
            exit_code=exit_info.get("code"), signal=exit_info.get("signal"),
            cpu_s=exit_info.get("cpu_s"), peak_rss_mb=exit_info.get("peak_rss_mb"))
        if self.final is not None and self.final["kind"] == "result":
            result.value = self.final.get("value")  # also when it came during a grace period
        if self.stopped == "timeout":
            result.reason = "timeout"
            result.error = f"wall-clock limit of {self.limits.wall_s:g} s exceeded"
        elif self.stopped == "cancelled":
            result.reason, result.error = "cancelled", "cancelled by the parent"
        elif self.final is not None and self.final["kind"] == "result":
            result.ok = True
        elif self.final is not None:
            result.reason = str(self.final.get("reason", "exception"))
            result.error = str(self.final.get("error", ""))
            result.traceback = str(self.final.get("traceback", ""))
        else:
            self._explain_death(result, proc)
        if self.violations and result.reason in ("ok", "exception"):
            first = self.violations[0]
            result.ok, result.reason = False, "blocked"
            result.error = f"blocked operation {first['operation']}: {first['detail']}"
        return result

    def _explain_death(self, result: SandboxResult, proc: subprocess.Popen) -> None:
        cpu_limit = float(self.limits.cpu_s or self.limits.wall_s * (os.cpu_count() or 1))
        if result.signal is not None:
            name = _signal_name(result.signal)
            over_cpu = (result.cpu_s or 0.0) >= cpu_limit - 0.5
            if result.signal == signal.SIGXCPU or (result.signal == signal.SIGKILL and over_cpu):
                result.reason = "cpu_limit"
                result.error = f"CPU time limit of {cpu_limit:g} s exceeded ({name})"
            else:
                result.reason = "signal"
                result.error = f"the child was killed by signal {name} ({result.signal})"
        elif result.exit_code is not None:
            result.reason = "exit"
            result.error = f"the child exited with code {result.exit_code} before returning"
        else:
            result.reason = "start_failed"
            result.error = f"the sandbox ended without a report (exit status {proc.returncode})"


def run_sandboxed(
    target: str,
    payload: dict,
    limits: Limits | None = None,
    on_event: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run ``target`` ("module:function") on ``payload`` in a sandboxed child process.

    Never raises for anything the child does: crashes, limits and blocked operations come
    back as ``SandboxResult(ok=False, reason=..., error=...)``. Setting ``cancel`` kills the
    child (the result's reason is then "cancelled").
    """
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    return _Run(target, payload, limits or Limits(), on_event, cancel).run()


class SessionClosed(RuntimeError):
    """The worker ended (crashed, was killed, hit a limit) before it answered; ``result``
    says how, like ``run_sandboxed``'s."""

    def __init__(self, result: SandboxResult):
        super().__init__(f"{result.reason}: {result.error}")
        self.result = result


class Session:
    """A conversation with one sandboxed worker: ``call`` sends a request and waits for the
    worker's reply; ``close`` ends the conversation and returns how the worker ended.

    Replies are raw data from untrusted code: callers validate every field they read.
    """

    def __init__(self, target: str, payload: dict, limits: Limits,
                 on_event: Callable[[dict], None] | None, cancel: threading.Event | None):
        self._cancel = cancel or threading.Event()
        self._run = _Run(target, payload, limits, on_event, self._cancel)
        self._run.session = self
        self._lock = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._next_id = 0
        self._fd: int | None = None
        self._pid: int | None = None
        self._ended = False
        self.result: SandboxResult | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name="sandbox-session")
        self._thread.start()

    # -- called by the run's threads --------------------------------------------------------
    def _main(self) -> None:
        result = self._run.run()
        with self._lock:
            self.result = result
            self._ended = True
            self._lock.notify_all()

    def _attach(self, fd: int, pid: int) -> None:
        with self._lock:
            self._fd, self._pid = fd, pid
            self._lock.notify_all()

    def _detach(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._lock.notify_all()

    def _on_reply(self, message: dict) -> None:
        ident = message.get("id")
        if not isinstance(ident, int) or not 0 <= ident < self._next_id:
            return  # not an answer to anything asked
        with self._lock:
            self._replies.setdefault(ident, message)
            self._lock.notify_all()

    # -- the caller's side -----------------------------------------------------------------
    def call(self, op: str, timeout: float | None = None, **data: object) -> dict:
        """Send ``op`` with ``data`` (JSON-able) and return the worker's reply (a dict).

        Raises ``SessionClosed`` when the worker ended first, and kills the worker and
        raises ``TimeoutError`` when no reply came within ``timeout`` seconds.
        """
        line = None
        with self._lock:
            while self._fd is None and not self._ended:
                self._lock.wait()
            if not self._ended:
                ident = self._next_id
                self._next_id += 1
                line = (json.dumps({"id": ident, "op": op, "data": data}) + "\n").encode()
                fd = self._fd
        if line is None:
            raise SessionClosed(self._wait_result())
        try:
            while line:
                line = line[os.write(fd, line):]
        except OSError:
            raise SessionClosed(self._wait_result()) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while ident not in self._replies and not self._ended:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(left)
            reply = self._replies.pop(ident, None)
        if reply is not None:
            data = reply.get("data")
            return data if isinstance(data, dict) else {}
        if not self._ended:
            self._cancel.set()
            raise TimeoutError(f"the sandboxed worker did not answer {op!r} within "
                               f"{timeout:g} s")
        raise SessionClosed(self._wait_result())

    @property
    def violations(self) -> list[dict]:
        """Operations the guard blocked so far (also those the design caught and hid)."""
        return list(self._run.violations)

    def worker_cpu_s(self) -> float | None:
        """CPU seconds the worker process has used so far, read by this (trusted) process
        from /proc: a measurement design code cannot alter. None where /proc is missing."""
        with self._lock:
            pid = self._run.worker_pid or self._find_worker()
        return _cpu_seconds(pid) if pid else None

    def _find_worker(self) -> int | None:
        pid = self._pid
        while pid is not None:  # the worker is the leaf: launcher -> supervisor -> worker
            children = _children(pid)
            if not children:
                break
            pid = children[0]
        if pid is not None and pid != self._pid and not _children(pid):
            self._run.worker_pid = pid
            return pid
        return None

    def close(self, timeout: float = 30.0) -> SandboxResult:
        """Tell the worker no more requests come, wait for it to end, return its result."""
        self._detach()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._cancel.set()
        return self._wait_result()

    def kill(self) -> SandboxResult:
        self._cancel.set()
        return self._wait_result()

    def _wait_result(self) -> SandboxResult:
        self._thread.join()
        assert self.result is not None
        return self.result

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.kill()
        else:
            self.close()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _cpu_seconds(pid: int) -> float | None:
    """On-CPU time of every thread of ``pid`` (schedstat, nanoseconds; stat ticks else)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def open_session(
    target: str,
    payload: dict,
    limits: Limits | None = None,
    on_event: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
) -> Session:
    """Start ``target`` ("module:function") as ``function(payload, emit, inbox)`` in a
    sandboxed child and return the Session to send it requests (see ``Session.call``)."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    return Session(target, payload, limits or Limits(), on_event, cancel)

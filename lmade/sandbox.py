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

Layers, strongest first (``isolation()`` says which this machine provides; ``genesys check
--isolation`` prints it). The jail, seccomp and the limits are the defence; the audit hook
and the static format check only give design authors early, readable messages.
- namespaces via ``unshare``: a network namespace with only its own loopback (nothing
  outside is reachable), a PID namespace whose init is the supervisor (every process the
  code starts dies with it) and its own /proc; as a normal user also a user namespace.
- the jail (``sandbox_jail``, needs ``setpriv``): a fresh root built from an allowlist
  (system libraries, interpreter, packages, the project's code, the readable dirs read-only;
  a size-limited scratch tmpfs and the writable dirs read-write; its own /proc, a minimal
  /dev and /etc), all capabilities dropped and, for a root parent, a uid of its own per
  concurrent sandbox (``SANDBOX_UID_BASE`` + slot, so RLIMIT_NPROC is not shared).
- seccomp (``sandbox_seccomp``): no exec (unless ``allow_subprocess``), no socket family
  but AF_UNIX (AF_INET/6 on the private loopback with ``local_sockets``), no ptrace,
  mount, unshare, setns, bpf, keyctl... for the worker and everything it starts.
- a cgroup per run (``sandbox_cgroup``, v2 where delegated, v1 as root): ``memory_mb``
  and ``max_procs`` for all of the sandbox's processes together.
- rlimits in the worker: CPU seconds, address space (data segment with CUDA), processes
  and threads, file size, no core files.
- the audit-hook guard (``sandbox_guard``): clear messages for blocked sockets, process
  starts, ctypes, reads outside the allowed roots and writes outside the scratch dir.
  Processes the worker starts (DataLoader workers, torchrun ranks) stay in the same
  namespaces, jail, seccomp filter, cgroup and uid; only this hook is the worker's own.
- the parent: wall-clock limit, cancellation, and it survives any death of the child.
  What it takes from the child is capped: stdout+stderr ``MAX_OUTPUT_BYTES`` (64 MiB)
  plus 16 KiB per second of the run (only the last ``_STDERR_TAIL`` characters are kept),
  messages (events, replies, the result) ``MAX_EVENT_BYTES`` (1 GiB) plus 64 KiB per
  second, one message line ``MAX_LINE_BYTES`` (16 MiB), the last ``_MAX_EVENTS_KEPT``
  events, the first ``MAX_VIOLATIONS_KEPT`` (50) violations and at most ``MAX_VIOLATIONS``
  (1000); beyond any of these the child is stopped with reason "flood".
"""

from __future__ import annotations

import collections
import fcntl
import functools
import importlib.util
import json
import os
import secrets
import selectors
import shutil
import signal
import site
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

SANDBOX_UID_BASE = 200000  # a root parent runs sandbox slot N as uid/gid BASE + N
SANDBOX_SLOTS = 256
_SLOT_LOCK_DIR = "/run/lock/genesys-sandbox"  # root-only: the sandbox never sees /run
_CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
_PACKAGE_DIR = Path(__file__).resolve().parent
_MAX_EVENTS_KEPT = 1000
MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSON message (an event, a reply, the result)
MAX_EVENT_BYTES = 1024 * 1024 * 1024  # all messages of one run together, plus per second:
EVENT_BYTES_PER_S = 64 * 1024
MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # the child's stdout + stderr together, plus per second:
OUTPUT_BYTES_PER_S = 16 * 1024
MAX_VIOLATIONS_KEPT = 50
MAX_VIOLATIONS = 1000
_STDERR_TAIL = 4000
_DRAIN_AFTER_EXIT_S = 1.0  # how long pipes are read after the child exited
_GENESYS_SUBPACKAGES = ("lmade", "designer", "gpu_agent", "server", "llm_gateway")


@dataclass(frozen=True)
class Limits:
    """What a sandboxed run may use. None switches a limit off."""

    wall_s: float = 60.0
    cpu_s: float | None = None  # default: wall_s x CPU count
    # address space (RLIMIT_DATA instead when cuda=True); also the cgroup's memory.max
    memory_mb: int | None = 4096
    # processes + threads of the sandbox uid (RLIMIT_NPROC) and of its cgroup (pids.max)
    max_procs: int | None = 512
    scratch_mb: int | None = 2048  # size of a throw-away scratch (a tmpfs) and of /dev/shm
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
    hidden_dirs: tuple[str, ...] = ()  # covered when inside a bound dir (so are home, checkout)
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
    cpu_limit, memory_limit, flood, signal, exit, cancelled, start_failed; ``error`` says it in
    words, ``violations`` lists blocked operations (even ones the code swallowed).
    ``isolation`` holds the layers' ``enforced`` and ``missing`` lists, the run's ``uid``
    (root parents), ``jail_errors`` (what stage one could not mount) and
    ``killed_leftover_processes`` (processes still in the run's cgroup at its end)."""

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
    """The OS layers this machine offers: the namespace command and what it enforces."""

    prefix: tuple[str, ...]  # the unshare command, () when namespaces are unavailable
    jail: bool  # allowlist root + capability drop (sandbox_jail) in the child
    drop_uid: bool  # the child runs as a uid of its own (root parents only)
    enforced: tuple[str, ...]
    missing: tuple[str, ...]
    seccomp: bool = False  # the worker loads sandbox_seccomp's filter
    cgroup: str = ""  # "v1" / "v2": memory and pids limits per run (sandbox_cgroup)

    def describe(self) -> dict:
        return {"enforced": list(self.enforced), "missing": list(self.missing)}


NO_ISOLATION = Isolation((), False, False, ("audit hook", "rlimits"),
                          ("namespaces", "allowlist jail", "seccomp", "cgroup limits",
                           "uid per sandbox"))


def _sibling(name: str) -> Any:
    """A torch-free module of this folder, loaded like this one (the GPU agent loads
    sandbox.py by file, without importing genesys.lmade, whose __init__ imports torch)."""
    full = f"genesys.lmade.{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, _PACKAGE_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]


def _probe(cmd: list[str]) -> bool:
    """Does this command start our interpreter with its own standard library?"""
    same_python = f"import sys; sys.exit(sys.base_prefix != {sys.base_prefix!r})"
    try:
        return subprocess.run(cmd + [sys.executable, "-c", same_python], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _probe_jail(prefix: list[str], uid: int | None) -> str:
    """Build a jail once in fresh namespaces and drop to ``uid`` in it, as stage one does;
    "" when that holds, else why not."""
    # A scratch dir of its own, as a real run has: the temp dir itself would count every
    # path below it (a checkout or a venv under /tmp) as scratch and leave it out.
    scratch = tempfile.mkdtemp(prefix="genesys-probe-")
    try:
        config = {**_jail_config(Limits(), scratch, _read_roots(Limits(), ""), uid),
                  "setpriv": shutil.which("setpriv")}
    finally:
        os.rmdir(scratch)
    check = ("import os, sys; sys.exit(0 if not os.path.exists('/.oldroot') and "
             f"os.path.isdir(sys.prefix) and os.getuid() == {uid if uid is not None else 0} "
             "else 3)")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import json, sandbox_jail; "
            "config = json.loads(sys.argv[2]); sandbox_jail.enter(config); "
            f"sandbox_jail.exec_stage_two(config, [sys.executable, '-S', '-c', {check!r}])")
    try:
        done = subprocess.run([*prefix, sys.executable, "-s", "-c", code, str(_PACKAGE_DIR),
                               json.dumps(config)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]


@functools.cache
def isolation() -> Isolation:
    """Find the strongest OS isolation that works here (probed once per process)."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    root = os.geteuid() == 0
    user = [] if root else ["--user", "--map-root-user"]
    prefix = [unshare, *user, "--net", "--pid", "--kill-child", "--mount-proc", "--"]
    if not unshare or not _probe(prefix):
        return NO_ISOLATION
    enforced = ["network namespace (loopback only)", "pid namespace"] + ([] if root else
                                                                        ["user namespace"])
    missing = []
    why_not = _probe_jail(prefix, SANDBOX_UID_BASE if root else None) if setpriv else \
        "needs setpriv"
    own_uid = root and not why_not
    if root and why_not and setpriv:  # e.g. root of a user namespace without those uids
        why_not = _probe_jail(prefix, None)
    jail = not why_not
    if jail:
        enforced += ["allowlist jail (fresh root: interpreter, packages, code, data read-only;"
                     " scratch tmpfs)", "no capabilities"]
    else:
        missing.append(f"allowlist jail ({why_not})")
    seccomp = jail and bool(_sibling("sandbox_seccomp").backend())
    if seccomp:
        enforced.append(f"seccomp ({_sibling('sandbox_seccomp').backend()})")
    else:
        missing.append("seccomp (install python3-seccomp or pyseccomp)")
    cgroup = _sibling("sandbox_cgroup").available() if jail and root else ""
    if cgroup:
        enforced.append(f"cgroup {cgroup} memory and pids limits per sandbox")
    else:
        missing.append("cgroup limits (needs root and cgroup v1, or delegated cgroup v2)"
                       + ("; rlimits only" if jail else ""))
    if own_uid:
        enforced.append(f"a uid per sandbox ({SANDBOX_UID_BASE}+slot), RLIMIT_NPROC")
    elif jail:
        missing.append("a uid per sandbox (needs real root: RLIMIT_NPROC is shared with the "
                       "agent's user)")
    return Isolation(tuple(prefix), jail, own_uid, tuple(enforced), tuple(missing),
                     seccomp, cgroup)


def _private_dirs() -> tuple[str, ...]:
    """Dirs covered should a bound dir hold them: the parent's home (tokens, keys, caches)
    and the source checkout holding this package (only its code dirs are bound)."""
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


def _jail_config(limits: Limits, scratch: str, read_roots: list[str], uid: int | None,
                 cgroup_procs: tuple[str, ...] = ()) -> dict:
    layout = _sibling("sandbox_jail").layout(
        [r for r in read_roots if r != os.path.realpath(scratch)], list(limits.writable_dirs),
        os.path.normpath(os.path.abspath(scratch)), limits.scratch_mb, limits.scratch_dir is not None, uid,
        limits.cuda, _private_dirs() + tuple(limits.hidden_dirs))
    return {**layout, "setpriv": shutil.which("setpriv"), "cgroup_procs": list(cgroup_procs),
            "parent_mnt_ns": os.readlink("/proc/self/ns/mnt"), "loopback": not limits.network}


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


def _take_slot() -> tuple[int, int]:
    """A uid of its own for one sandbox (root parents): (uid, fd holding the slot's lock).
    Concurrent sandboxes, in this process or another, get different slots."""
    os.makedirs(_SLOT_LOCK_DIR, mode=0o700, exist_ok=True)
    dir_fd = os.open(_SLOT_LOCK_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if os.fstat(dir_fd).st_uid != os.geteuid():
            raise RuntimeError(f"{_SLOT_LOCK_DIR} is not owned by this user")
        for slot in range(SANDBOX_SLOTS):
            fd = os.open(f"slot-{slot}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dir_fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return SANDBOX_UID_BASE + slot, fd
    finally:
        os.close(dir_fd)
    raise RuntimeError(f"all {SANDBOX_SLOTS} sandbox slots are in use")


def _make_tmp(scratch: str) -> None:
    """``scratch/tmp`` (the child's TMPDIR), never through a link planted in a kept
    scratch dir by an earlier run."""
    dir_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.mkdir("tmp", 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass  # whatever is there is the sandbox's own business
    finally:
        os.close(dir_fd)


def _chown_tree(path: str, uid: int) -> None:
    """Hand a writable dir to the sandbox uid, following no link (an earlier run may have
    planted some; a dir reached through one is skipped, and the jail does not mount it)."""
    if os.path.realpath(path) != os.path.normpath(os.path.abspath(path)):
        return
    os.chown(path, uid, uid, follow_symlinks=False)
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
        self.iso = isolation() if limits.isolate else NO_ISOLATION
        self.nonce = secrets.token_hex(16)
        self.events: collections.deque[dict] = collections.deque(maxlen=_MAX_EVENTS_KEPT)
        self.violations: list[dict] = []
        self.final: dict | None = None  # the worker's result or error message
        self.exit: dict | None = None  # the supervisor's report on how the worker ended
        self.stopped: str | None = None  # timeout / cancelled when the parent killed it
        self.jail_errors: list[str] = []
        self.uid: int | None = None  # the sandbox's own uid (root parents with the jail)
        self.cgroup: Any = None  # sandbox_cgroup.Cgroup, where the host offers one
        self.flood: str | None = None  # what the child flooded the parent with
        self.violation_count = 0
        self.message_bytes = 0
        self.output_fd: int | None = None
        self.output = bytearray()  # the tail of the child's stdout + stderr
        self.output_bytes = 0
        self.started = time.monotonic()
        self.session: Session | None = None  # set when the parent converses with the worker
        self.worker_pid: int | None = None  # host pid of the worker, once it has started

    def run(self) -> SandboxResult:
        started = time.monotonic()
        own_scratch = self.limits.scratch_dir is None
        scratch = tempfile.mkdtemp(prefix="genesys-sandbox-") if own_scratch else \
            self.limits.scratch_dir
        _make_tmp(scratch)
        slot_fd = None
        try:
            if self.iso.drop_uid:
                self.uid, slot_fd = _take_slot()
                kept = () if own_scratch else (scratch,)  # a throw-away scratch is a tmpfs
                for path in (*kept, *self.limits.writable_dirs):
                    _chown_tree(path, self.uid)
            if self.iso.cgroup:
                self.cgroup = _sibling("sandbox_cgroup").Cgroup.create(
                    f"genesys-sandbox-{self.nonce[:16]}", self.limits.memory_mb,
                    self.limits.max_procs)
            result = self._execute(scratch)
        finally:
            leftover = self.cgroup.close() if self.cgroup is not None else []
            if slot_fd is not None:
                os.close(slot_fd)
            if own_scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        result.output_tail = self.output.decode(errors="replace")[-_STDERR_TAIL:]
        result.wall_s = time.monotonic() - started
        result.isolation = self.iso.describe()
        if self.uid is not None:
            result.isolation["uid"] = self.uid
        if self.iso.cgroup and self.cgroup is None:
            result.isolation["missing"].append("cgroup (could not create one for this run)")
        if leftover:
            result.isolation["killed_leftover_processes"] = len(leftover)
        if self.jail_errors:
            result.isolation["jail_errors"] = self.jail_errors
        return result

    def _request(self, scratch: str, read_roots: list[str]) -> bytes:
        limits = asdict(self.limits)
        limits["cpu_s"] = self.limits.cpu_s or self.limits.wall_s * (os.cpu_count() or 1)
        limits["env"] = {}
        return json.dumps({
            "target": self.target, "payload": self.payload, "limits": limits,
            "session": self.session is not None, "seccomp": self.iso.seccomp,
            "nonce": self.nonce, "scratch": scratch, "pythonpath": list(self.limits.pythonpath),
            "read_roots": read_roots, "write_roots": [scratch, *self.limits.writable_dirs],
        }).encode()

    def _execute(self, scratch: str) -> SandboxResult:
        output_r, output_w = os.pipe()
        events_r, events_w = os.pipe()
        status_r, status_w = os.pipe()
        control_r, control_w = os.pipe()
        requests_r, requests_w = os.pipe()
        child_fds = (events_w, status_w, control_r, requests_r)
        read_roots = _read_roots(self.limits, scratch, self.target)
        prefix = [a for a in self.iso.prefix if not (self.limits.network and a == "--net")]
        # Stage one (the jail) needs only the standard library: -S skips site's start-up.
        flags = ["-s", "-S"] if self.iso.jail else ["-s"]
        cmd = [*prefix, sys.executable, *flags, str(_CHILD_SCRIPT), *map(str, child_fds)]
        if self.iso.jail:
            procs = self.cgroup.procs_files() if self.cgroup is not None else ()
            cmd.append(json.dumps(_jail_config(self.limits, scratch, read_roots, self.uid,
                                               procs)))
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=output_w, stderr=output_w, cwd=scratch,
                env=_child_env(self.limits, scratch), pass_fds=child_fds,
                start_new_session=True)
        except OSError as exc:
            for fd in (output_r, output_w, events_r, status_r, control_w, requests_w,
                       *child_fds):
                os.close(fd)
            return SandboxResult(False, reason="start_failed", error=f"cannot start: {exc}")
        for fd in (*child_fds, output_w):
            os.close(fd)
        self.output_fd = output_r
        if self.session is not None:
            self.session._attach(requests_w, proc.pid)
        else:
            os.close(requests_w)  # the worker reads end-of-file: no requests will come
        threading.Thread(target=self._feed, args=(proc, self._request(scratch, read_roots)),
                         daemon=True).start()
        try:
            self._pump(proc, {events_r: self._on_line, status_r: self._on_status,
                              output_r: self._on_output}, control_w)
        finally:
            self._kill(proc)
            for fd in (output_r, events_r, status_r, control_w):
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
        buffers = {fd: bytearray() for fd in handlers}  # grows in place: no copy per chunk
        exited_at: float | None = None
        with selectors.DefaultSelector() as sel:
            for fd in handlers:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if self.flood is not None:
                    self.stopped = "flood"
                    return
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
                    if key.fd == self.output_fd:
                        self._on_output(chunk)
                        continue
                    self.message_bytes += len(chunk)
                    if self.message_bytes > self._allowance(MAX_EVENT_BYTES, EVENT_BYTES_PER_S):
                        self.flood = f"more than {self.message_bytes >> 20} MiB of messages"
                    buffer = buffers[key.fd]
                    buffer += chunk
                    lines = []
                    if b"\n" in chunk:
                        *lines, rest = buffer.split(b"\n")
                        buffers[key.fd] = bytearray(rest)
                    if len(buffers[key.fd]) > MAX_LINE_BYTES:
                        self.flood = f"a message line over {MAX_LINE_BYTES >> 20} MiB"
                        buffers[key.fd] = bytearray()
                    for line in lines:
                        self._dispatch(line, handlers[key.fd])

    def _on_output(self, chunk: bytes) -> None:
        self.output_bytes += len(chunk)
        self.output += chunk
        del self.output[:-4 * _STDERR_TAIL]
        if self.output_bytes > self._allowance(MAX_OUTPUT_BYTES, OUTPUT_BYTES_PER_S):
            self.flood = f"{self.output_bytes >> 20} MiB on stdout/stderr"

    def _allowance(self, burst: int, per_s: int) -> float:
        return burst + per_s * (time.monotonic() - self.started)

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
            self.violation_count += 1
            if self.violation_count > MAX_VIOLATIONS:
                self.flood = f"more than {MAX_VIOLATIONS} blocked operations"
            elif len(self.violations) < MAX_VIOLATIONS_KEPT:
                self.violations.append({"operation": str(message.get("operation"))[:200],
                                        "detail": str(message.get("detail"))[:2000],
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
        elif self.stopped == "flood":
            result.reason = "flood"
            result.error = f"stopped: the child sent {self.flood}"
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
        if result.signal in (None, signal.SIGKILL) and self.cgroup is not None \
                and self.cgroup.oom_killed():  # None: the supervisor was killed too
            result.reason = "memory_limit"
            result.error = (f"memory limit of {self.limits.memory_mb} MiB (cgroup) exceeded; "
                            "the kernel killed the sandbox")
        elif result.signal is not None:
            name = _signal_name(result.signal)
            over_cpu = (result.cpu_s or 0.0) >= cpu_limit - 0.5
            if result.signal == signal.SIGXCPU or (result.signal == signal.SIGKILL
                                                   and over_cpu):
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

"""`--workers N` (GATEWAY_WORKERS): one supervisor process and N gateway processes on one port.

The parent does no gateway work. It loads (or creates) the gateway key once, so every worker has
the same DID; reserves the port (a bound, never listening SO_REUSEPORT socket, which also turns
`--port 0` into one concrete port); and starts N `aiconexus-gateway` processes with the same
arguments plus `--workers 1 --port P --key-file K --instance-id <base>-w<i>`. Each worker listens
with SO_REUSEPORT, so the kernel spreads new connections over them, and runs in cluster mode
(REDIS_URL is required: config.check refuses more than one worker without it), so an agent on one
worker reaches an agent on another through Redis, and /health and /agents answer for the cluster,
which is the whole host when the Redis serves only it.

Signals: SIGTERM or SIGINT to the parent is forwarded (as SIGTERM) to every worker; each drains
as a single gateway does (DRAIN_TIMEOUT); the parent waits for them, SIGKILLs any still alive
DRAIN_TIMEOUT + 5 s later, and exits 0 when all drained by themselves.

A worker that dies (a crash, an OOM kill) is reported and restarted under a fresh INSTANCE_ID
(`<base>-w<i>.<n>`: the dead one's heartbeat may still be live in Redis, which would refuse the
name until it expires); its agents reconnect (the SDK does) and land on any worker. More than
RESTART_LIMIT deaths within RESTART_WINDOW seconds stop the whole group with exit code 1: a
worker that cannot stay up is a fault for the operator (or the service manager) to see, not a
loop to hide.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..backends.settings import generate_instance_id
from ..config import Config
from ..logs import write_line

log = logging.getLogger("aiconexus.gateway")

WORKER_ENV = "AICONEXUS_GATEWAY_WORKER"  # in a worker's environment: "<index> <ready fd>"
READY_TIMEOUT = 60.0  # seconds a worker may take to start (Redis, the key, binding)
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
KILL_MARGIN = 5.0  # seconds after DRAIN_TIMEOUT before a worker still alive is killed


def _die_with_parent() -> None:
    """In a worker before exec (Linux): SIGTERM when the supervisor dies, even by SIGKILL, so no
    worker outlives it unsupervised."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def is_worker() -> bool:
    """True in a process started by the supervisor (it listens with SO_REUSEPORT)."""
    return bool(os.environ.get(WORKER_ENV))


def notify_ready() -> None:
    """Tell the supervisor this worker is serving (no-op outside a worker)."""
    value = os.environ.get(WORKER_ENV, "")
    if not value:
        return
    with contextlib.suppress(ValueError, OSError):
        fd = int(value.split()[1])
        os.write(fd, b"1")
        os.close(fd)


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket on host:port: fixes the port (`0`: a free one)
    for the workers, and fails early when something else holds it. It never accepts: only
    listening sockets share the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    return sock


@dataclass
class Worker:
    index: int
    instance_id: str
    proc: subprocess.Popen[bytes]
    ready_fd: int  # the read end of its ready pipe; -1 once it said ready
    restarts: int = 0


@dataclass
class Supervisor:
    config: Config
    argv: list[str]
    port: int
    key_file: str
    base: str
    workers: list[Worker] = field(default_factory=list)
    deaths: deque[float] = field(default_factory=deque)
    stopping: bool = False
    wakeup: int = -1  # the read end of signal.set_wakeup_fd's pipe

    def spawn(self, index: int, restarts: int = 0) -> Worker:
        instance = f"{self.base}-w{index}" + (f".{restarts}" if restarts else "")
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        env = {**os.environ, WORKER_ENV: f"{index} {write_fd}"}
        command = [sys.executable, "-m", "aiconexus_gateway", *self.argv, "--workers", "1",
                   "--port", str(self.port), "--key-file", self.key_file,
                   "--instance-id", instance]
        proc = subprocess.Popen(command, env=env, pass_fds=(write_fd,),
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        os.close(write_fd)
        return Worker(index, instance, proc, read_fd, restarts)

    def signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signum)

    def wake(self, timeout: float | None) -> None:
        """Block until a signal arrives (SIGCHLD, SIGTERM, SIGINT write to the wakeup pipe)."""
        readable, _, _ = select.select([self.wakeup], [], [], timeout)
        if readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup, 512)

    def wait_ready(self) -> int:
        """0 once every worker said it serves; else the exit code of the first that failed."""
        deadline = time.monotonic() + READY_TIMEOUT
        while any(worker.ready_fd >= 0 for worker in self.workers):
            if self.stopping:
                return 0
            waiting = {worker.ready_fd: worker for worker in self.workers if worker.ready_fd >= 0}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                say_error(self.config, f"a worker did not start within {READY_TIMEOUT:g} s")
                return 1
            readable, _, _ = select.select([*waiting, self.wakeup], [], [], remaining)
            for fd in readable:
                if fd == self.wakeup:
                    self.wake(0)
                    continue
                worker = waiting[fd]
                said = os.read(fd, 1)
                os.close(fd)
                worker.ready_fd = -1
                if not said:  # the pipe closed without a word: it exited
                    return worker.proc.wait() or 1
        return 0

    def run(self) -> int:
        for index in range(self.config.workers):
            self.workers.append(self.spawn(index))
        code = self.wait_ready()
        if code:
            self.stop()
            return code
        if not self.stopping:
            say(self.config, f"workers: {len(self.workers)} gateway processes share port "
                f"{self.port} (instances {self.base}-w0..w{len(self.workers) - 1}); SIGTERM to "
                f"process {os.getpid()} drains them all")
        while not self.stopping:
            for position, worker in enumerate(self.workers):
                died = worker.proc.poll() is not None and not self.stopping
                if died and not self.replace(position, worker):
                    self.stop()
                    return 1
            self.wake(None)
        return self.stop()

    def replace(self, position: int, worker: Worker) -> bool:
        """A worker died: restart it under a new name, unless too many died lately."""
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - RESTART_WINDOW:
            self.deaths.popleft()
        code = worker.proc.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"exited with code {code}"
        if len(self.deaths) > RESTART_LIMIT:
            say_error(self.config, f"worker {worker.index} (instance {worker.instance_id}, pid "
                      f"{worker.proc.pid}) {how}; {len(self.deaths)} workers died within "
                      f"{RESTART_WINDOW:g} s: stopping them all")
            return False
        fresh = self.spawn(worker.index, worker.restarts + 1)
        with contextlib.suppress(OSError):
            os.close(fresh.ready_fd)  # it joins when ready; nobody waits for it
        fresh.ready_fd = -1
        self.workers[position] = fresh
        say_error(self.config, f"worker {worker.index} (instance {worker.instance_id}, pid "
                  f"{worker.proc.pid}) {how}; restarted as {fresh.instance_id} (pid "
                  f"{fresh.proc.pid})")
        return True

    def stop(self) -> int:
        """SIGTERM to every worker, wait for their drain, kill what outlives it: 0 if none had to
        be killed."""
        self.stopping = True
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_timeout + KILL_MARGIN
        killed = 0
        for worker in self.workers:
            with contextlib.suppress(OSError):
                if worker.ready_fd >= 0:
                    os.close(worker.ready_fd)
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
                killed += 1
        if killed:
            say_error(self.config, f"{killed} worker(s) did not drain within DRAIN_TIMEOUT + "
                      f"{KILL_MARGIN:g} s and were killed")
        return 1 if killed else 0


def say(config: Config, line: str) -> None:
    if config.log_format == "json":
        log.info("%s", line)
    else:
        write_line(sys.stdout, line)


def say_error(config: Config, line: str) -> None:
    if config.log_format == "json":
        log.error("%s", line)
    else:
        write_line(sys.stderr, f"aiconexus-gateway: {line}")


def supervise(config: Config, argv: Sequence[str]) -> int:
    """Run config.workers gateway processes until SIGTERM/SIGINT; the exit code."""
    from .app import StartupError, load_identity  # app imports this module

    private_dir = None
    try:
        if config.key_file:
            load_identity(config.key_file)  # created once here, not raced by N workers
            key_file = config.key_file
        else:  # one fresh key for this run, shared by the workers, removed at exit
            private_dir = tempfile.mkdtemp(prefix="aiconexus-gateway-")
            key_file = os.path.join(private_dir, "gateway.key")
            load_identity(key_file)
        try:
            reserved = reserve_port(config.host, config.port)
        except OSError as exc:
            raise StartupError(f"cannot listen on {config.host}:{config.port}: "
                               f"{exc.strerror or exc}") from None
    except StartupError as exc:
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
        say_error(config, str(exc))
        return exc.exit_code
    base = config.instance_id or generate_instance_id(socket.gethostname(), secrets.token_hex(3))
    supervisor = Supervisor(config, list(argv), reserved.getsockname()[1], key_file, base[:54])

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping = True

    def child(signum: int, frame: object) -> None:
        pass  # only wakes the loop (the wakeup pipe); run() looks at the workers

    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_r, False)
    os.set_blocking(wakeup_w, False)
    supervisor.wakeup = wakeup_r
    previous_fd = signal.set_wakeup_fd(wakeup_w)
    previous = {signum: signal.signal(signum, handler) for signum, handler in (
        (signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGCHLD, child))}
    try:
        return supervisor.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(wakeup_r)
        os.close(wakeup_w)
        reserved.close()
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)

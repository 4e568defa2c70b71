"""Reaching a Ray cluster (issue 30): an address where nothing listens fails at once (or after
:data:`CONNECT_TIMEOUT_S` when nothing answers) with one ``error:`` line, instead of Ray
retrying for minutes with a warning every 5 s; Ray's start-up lines stay off stderr unless -v."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

import pytest

from viz_core.dataset import ray_engine
from viz_core.dataset.ray_engine import CONNECT_TIMEOUT_S, RayUnavailableError, start_ray


@pytest.fixture(autouse=True)
def ray_environment(monkeypatch):
    """start_ray quiets Ray's C++ logs through the environment; each test gets it back."""
    monkeypatch.setenv("RAY_BACKEND_LOG_LEVEL", "fatal")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeRay:
    """Records ``init`` calls; its init writes to file descriptor 2 as Ray's C++ core does."""

    def __init__(self):
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(kwargs)
        os.write(2, b"[core_worker.cc] Ray says hello\n")


def test_an_address_where_nothing_listens_fails_at_once_without_asking_ray():
    ray, port = FakeRay(), closed_port()
    start = time.monotonic()
    with pytest.raises(RayUnavailableError) as refused:
        start_ray(ray, f"127.0.0.1:{port}", verbose=False)
    assert time.monotonic() - start < 5.0
    assert str(refused.value) == (
        f"Nothing answers at the Ray cluster address '127.0.0.1:{port}' (Connection refused, "
        "waited up to 30 s); start the cluster (ray start --head) or check the address.")
    with pytest.raises(RayUnavailableError, match="Connection refused"):
        start_ray(ray, f"ray://127.0.0.1:{port}", verbose=False)
    assert ray.calls == []


def test_an_address_that_never_answers_is_given_up_after_the_timeout(monkeypatch):
    waited = []

    def silent(address, timeout):
        waited.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(ray_engine.socket, "create_connection", silent)
    with pytest.raises(RayUnavailableError, match=r"\(no answer, waited up to 30 s\)"):
        start_ray(FakeRay(), "198.51.100.7:6379", verbose=False)
    assert waited == [CONNECT_TIMEOUT_S] == [30.0]


class Listener:
    """A local TCP server answering every connection with ``reply`` (after reading the
    client's opening), on a thread; ``None`` never answers."""

    def __init__(self, reply: bytes | None):
        self.reply, self.server = reply, socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.address = "127.0.0.1:%d" % self.server.getsockname()[1]
        self.heard: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    self.heard.append(connection.recv(64))
                    if self.reply is None:
                        time.sleep(3)
                        continue
                    connection.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.close()


# What a gRPC server (Ray's GCS, measured on a real `ray start --head`) sends first: a
# SETTINGS frame (length 24, type 4, flags 0, stream 0) and its settings.
GRPC_SETTINGS = bytes([0, 0, 24, 4, 0, 0, 0, 0, 0]) + bytes(24)


@pytest.mark.parametrize("reply, why", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "an HTTP/1 server"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "an SSH server"),
    (b"", "a server that hangs up"),
    (None, "a server that never says anything"),
])
def test_a_listener_that_is_not_ray_is_refused_without_asking_ray(reply, why):
    ray = FakeRay()
    with Listener(reply) as listener:
        start = time.monotonic()
        with pytest.raises(RayUnavailableError) as refused:
            ray_engine._answers(listener.address, 5.0, greeting=1.0)
        assert time.monotonic() - start < 4.0, why
        if reply is not None:  # (the silent one would take start_ray's full 10 s greeting)
            with pytest.raises(RayUnavailableError, match="not a Ray cluster"):
                start_ray(ray, listener.address, verbose=False)
    assert str(refused.value) == (
        f"Something answers at '{listener.address}' but it is not a Ray cluster (it does not "
        "speak Ray's gRPC protocol; waited 1 s); give the head's GCS address (host:6379) or "
        "its Ray Client address (ray://host:10001).")
    assert listener.heard and listener.heard[0].startswith(b"PRI * HTTP/2.0")
    assert ray.calls == []


def test_ray_start_up_lines_stay_off_stderr_unless_verbose(capfd):
    ray = FakeRay()
    with Listener(GRPC_SETTINGS) as server:
        address = server.address
        start_ray(ray, address, verbose=False)
        assert capfd.readouterr().err == ""
        start_ray(ray, address, verbose=True)
        assert capfd.readouterr().err == "[core_worker.cc] Ray says hello\n"
    assert [c["address"] for c in ray.calls] == [address, address]
    assert [c["logging_level"] for c in ray.calls] == [logging.WARNING, logging.INFO]


def test_the_dataset_command_with_a_closed_ray_address_ends_in_one_error_line(tmp_path, capsys):
    pytest.importorskip("ray")
    from viz_core.cli import main

    port = closed_port()
    start = time.monotonic()
    code = main(["dataset", "--model", "demo", "--data", "sample:shapes", "--limit", "8",
                 "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
                 "--out", str(tmp_path / "out")])
    seconds = time.monotonic() - start
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Connection refused" in lines[0]
    assert seconds < CONNECT_TIMEOUT_S

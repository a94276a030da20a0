"""The SDK against a real server on 127.0.0.1: init/log/finish, media, files, queries, resume."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import shipyard
from shipyard.app import create_app
from shipyard.client._config import ClientSettings
from shipyard.client._http import Http, ServerUnreachable
from shipyard.config import Settings
from shipyard.errors import NotFound, Unprocessable
from tests._postgres import free_port
from tests.conftest import ServerThread


@pytest.fixture
def query(sdk: ClientSettings) -> Iterator[shipyard.Client]:
    with shipyard.Client(settings=sdk) as client:
        yield client


def test_training_loop_round_trip(
    sdk: ClientSettings, query: shipyard.Client, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"weights" * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with shipyard.init(
        project="digits",
        name="mlp",
        config={"lr": 1e-3, "layers": [64, 32]},
        tags=["demo"],
        settings=sdk,
        system_metrics=False,
    ) as run:
        for step in range(50):
            run.log({"train/loss": 1.0 / (step + 1), "val/acc": step / 50}, step=step)
        run.log({"weird": float("nan"), "big": float("inf"), "np": np.float32(2.5)}, step=50)
        run.log({"samples": shipyard.Image(np.random.rand(8, 8), caption="epoch 3")}, step=3)
        run.log({"grid": [shipyard.Image(np.zeros((3, 4, 4))), shipyard.Image(np.ones((4, 4, 3)))]})
        assert run.log_checkpoint(ckpt, metrics={"val/acc": 0.98}) == "checkpoints/ckpt.pt"
        assert run.log_artifact(folder) == ["plots/a.txt", "plots/sub/b.txt"]
    client = query
    view = client.run(run.id)
    assert view.status == "finished" and view.name == "mlp" and view.tags == ["demo"]
    assert view.config == {"lr": 1e-3, "layers": [64, 32]}
    assert view.summary["train/loss"]["last"] == pytest.approx(1 / 50)
    assert math.isnan(view.summary["weird"]["last"]) and view.summary["big"]["last"] == math.inf
    assert math.isnan(view.history("weird")["value"][0]) and view.history("big")["value"] == [
        math.inf
    ]
    assert view.summary["np"]["last"] == 2.5
    h = view.history("val/acc")
    assert h["step"] == list(range(50)) and h["value"][10] == pytest.approx(0.2)
    assert len(view.images()) == 3
    assert view.images("samples")[0]["caption"] == "epoch 3"
    assert view.checkpoints(best="val/acc")[0]["path"] == "checkpoints/ckpt.pt"
    assert (
        view.download("checkpoints/ckpt.pt", tmp_path / "back.pt").read_bytes() == ckpt.read_bytes()
    )
    env = view.environment
    assert env["python"] and env["host"] and isinstance(env["packages"], list)
    assert not (sdk.spool / run.id).exists()


def test_queries_filter_sort_and_raw_history(sdk: ClientSettings, query: shipyard.Client) -> None:
    for lr, acc in [(0.001, 0.95), (0.01, 0.92), (0.1, 0.5)]:
        with shipyard.init(
            project="digits", config={"lr": lr}, settings=sdk, system_metrics=False
        ) as run:
            run.log({"val/acc": acc})
            run.log_series("long", np.arange(20_000), np.linspace(0, 1, 20_000))
    client = query
    runs = client.runs("digits", filter="summary.val/acc > 0.9", order_by="-summary.val/acc")
    assert [r.config["lr"] for r in runs] == [0.001, 0.01]
    raw = runs[0].history("long", raw=True)
    assert len(raw["value"]) == 20_000 and raw["downsampled"] is False
    assert len(runs[0].history("long", max_points=500)["value"]) <= 500
    with pytest.raises(Unprocessable, match="unknown field"):
        client.runs("digits", filter="nonsense.x > 1")
    with pytest.raises(NotFound):
        client.run("0" * 32)
    assert client.projects()[0]["runs"] == 3
    assert len(client.runs(limit=2)) == 2


class PausableProxy:
    """A TCP proxy on 127.0.0.1 that can hold what clients send (``pause``): a server that
    stops answering mid-request, at the far edge of the SDK."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.flowing = threading.Event()
        self.flowing.set()
        self.holding = threading.Event()  # a request is held now
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, held: bool) -> None:
        try:
            while data := src.recv(65536):
                if held and not self.flowing.is_set():
                    self.holding.set()
                    self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def close(self) -> None:
        self.flowing.set()
        self.listener.close()


def test_log_never_waits_for_the_sender(tmp_path: Path) -> None:
    """The mechanism, not a budget: with the sender stuck inside a request the server does not
    answer, 5,000 ``log`` calls all return (each only appends to the queue), and once the server
    answers again every point arrives, once. (The SDK is under test: SQLite only.)"""
    port = free_port()
    proxy = PausableProxy(port)
    settings = Settings(home=tmp_path / "home", allowed_hosts=[f"127.0.0.1:{proxy.port}"])
    with ServerThread(create_app(settings), port=port) as server:
        sdk = ClientSettings(
            url=f"http://127.0.0.1:{proxy.port}", home=tmp_path, token=server.token
        )
        try:
            run = shipyard.init(project="p", settings=sdk, system_metrics=False)
            proxy.flowing.clear()
            run.log({"a": 0}, step=0)
            assert proxy.holding.wait(30), "the sender never sent"
            for step in range(1, 5000):
                run.log({"a": step, "b": 2.0, "c": 3.0}, step=step)
            assert run._busy and not proxy.flowing.is_set()  # the sender is still held
            proxy.flowing.set()
            run.finish()
        finally:
            proxy.close()
        with shipyard.Client(url=server.url, token=server.token) as client:
            assert client.run(run.id).summary["a"]["count"] == 5000


def test_keep_alive_calls_do_not_stall(tmp_path: Path) -> None:
    """The two mechanisms that keep a small call off Nagle's algorithm and delayed ACKs (a
    ~40 ms stall when a request goes out in two pieces on a kept-alive connection), each tested
    itself: TCP_NODELAY on both ends' sockets, and each request sent in one write; then a stall
    detector at 30 ms over 200 calls, which a busy machine cannot trip (a stall is systematic,
    every call or every other; preemption hits a few).

    The transport is under test, not the store, so this runs on SQLite only.
    """
    with ServerThread(create_app(Settings(home=tmp_path))) as server:
        http = Http(server.url, server.token)
        run = http.json("POST", "/api/runs", {"project": "p"})
        body = b'{"batch_id": "%d", "metrics": [{"key": "x", "steps": [1], "values": [1.0]}]}'
        stalls = 0
        for i in range(200):
            t = time.perf_counter()
            http.request(
                "POST",
                f"/api/runs/{run['id']}/log",
                content=body % i,
                headers={"content-type": "application/json"},
            )
            stalls += time.perf_counter() - t >= 0.030
        pool = http.client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1  # really one connection, reused
        stream = pool.connections[0]._connection._network_stream
        sdk_socket = stream.get_extra_info("socket")
        assert sdk_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert stream.writes == 201  # the run, then 200 batches: headers and body together
        (connection,) = server.server.server_state.connections
        server_socket = connection.transport.get_extra_info("socket")
        assert server_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        http.close()
    assert stalls < 100, f"{stalls} of 200 calls took 30 ms or more: the Nagle stall is back"


def test_resume_continues_steps_and_keeps_history(
    sdk: ClientSettings, query: shipyard.Client
) -> None:
    with shipyard.init(project="p", settings=sdk, system_metrics=False) as run:
        for step in range(5):
            run.log({"loss": float(step)})
    with shipyard.init(project="p", id=run.id, settings=sdk, system_metrics=False) as again:
        assert again.step == 5
        again.log({"loss": 5.0})
    h = query.run(run.id).history("loss")
    assert h["step"] == [0, 1, 2, 3, 4, 5]


def test_failed_block_marks_run_failed(sdk: ClientSettings, query: shipyard.Client) -> None:
    with (
        pytest.raises(RuntimeError),
        shipyard.init(project="p", settings=sdk, system_metrics=False) as run,
    ):
        run.log({"x": 1})
        raise RuntimeError("boom")
    assert query.run(run.id).status == "failed"


def test_system_metrics_are_sampled(sdk: ClientSettings, query: shipyard.Client) -> None:
    run = shipyard.Run(project="p", settings=sdk, system_metrics=True, system_interval_s=0.05)
    time.sleep(0.4)
    run.finish()
    summary = query.run(run.id).summary
    assert summary["system/cpu_percent"]["count"] >= 2
    assert 0 < summary["system/memory_percent"]["last"] <= 100
    assert summary["system/process_rss_mb"]["last"] > 10


def test_module_level_log_uses_current_run(sdk: ClientSettings, query: shipyard.Client) -> None:
    run = shipyard.init(project="p", settings=sdk, system_metrics=False)
    shipyard.log({"x": 1.0})
    shipyard.finish()
    assert query.run(run.id).summary["x"]["last"] == 1.0


def test_bad_project_name_fails_at_init(sdk: ClientSettings) -> None:
    with pytest.raises(Unprocessable):
        shipyard.init(project="no spaces allowed", settings=sdk, system_metrics=False)


def test_unreachable_server_message_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        shipyard.Client(url=f"http://127.0.0.1:{port}") as client,
        pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port} did not answer"),
    ):
        client.projects()

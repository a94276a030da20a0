"""Where alert channels may send: link-local and metadata addresses, this server itself and (by
default) private networks are refused when a channel is added and again before each delivery,
which then connects to the address it checked, follows no redirect and keeps the URL's name for
``Host`` and TLS. Nothing here sends anything off this machine: refused targets are never
connected to, and every receiver listens on 127.0.0.x."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shipyard import auth, monitoring
from shipyard.config import Settings
from shipyard.monitoring import ChannelCreate, notify, targets

A = "/api/projects/p/alerts"
PRIVATE = {"allow_private_webhooks": True}
OWN_PORT = 8765  # the server's own port in the settings of the "itself" cases
FIELDS = {"status": "test", "text": "hello", "project": "p", "rule": None}
PRIVATE_HINT = "set SHIPYARD_ALLOW_PRIVATE_WEBHOOKS=true to allow private networks"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is judged is the URL, not the store."""
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


@pytest.fixture
def extra() -> dict[str, Any]:
    """Settings a test adds to the server's (parametrize ``extra`` to change them)."""
    return {}


@pytest.fixture
def settings(settings: Settings, extra: dict[str, Any]) -> Settings:
    return settings.model_copy(update=extra)


@pytest.fixture
def project(client: TestClient) -> str:
    r = client.post("/api/projects", json={"name": "p"})
    assert r.status_code == 201, r.text
    return "p"


class Listener:
    """A TCP socket on 127.0.0.x that records each connection it gets (and answers nothing)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def connected_since(self, before: int = 0) -> int:
        """Connections since ``before``, counted once a probe of our own has been accepted
        (so one made just before is counted too)."""
        probe = socket.create_connection(self.sock.getsockname(), timeout=5)
        deadline = time.monotonic() + 10
        while self.connections <= before:  # the probe at least
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)
        probe.close()
        return self.connections - before - 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


class Hook:
    """An HTTP receiver on 127.0.0.x recording each POST's path and Host header; it answers
    ``status``, with ``location`` when set."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        status: int = 200,
        location: str = "",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[tuple[str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.requests.append((self.path, self.headers["host"]))
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def policy(tmp_path: Path, **extra: Any) -> targets.Policy:
    return targets.Policy.of(Settings(home=tmp_path / "home", **extra))


# -- adding a channel -----------------------------------------------------------------------

METADATA = "a link-local or cloud metadata address"
ADD_CASES = [
    ("http://169.254.169.254/latest/meta-data/", {}, f"{METADATA} (169.254.169.254): refused"),
    ("http://169.254.169.254/", PRIVATE, f"{METADATA} (169.254.169.254): refused"),
    ("http://[fd00:ec2::254]/", PRIVATE, f"{METADATA} (fd00:ec2::254): refused"),
    ("http://[::ffff:169.254.169.254]/", PRIVATE, f"{METADATA} (169.254.169.254): refused"),
    ("http://2852039166/", PRIVATE, f"{METADATA} (169.254.169.254): refused"),  # one number
    ("http://[fe80::1]:8080/", PRIVATE, f"{METADATA} (fe80::1): refused"),
    ("http://0.0.0.0:9000/", PRIVATE, "an unspecified or multicast address (0.0.0.0): refused"),
    ("http://10.0.0.1/hook", {}, f"a private address (10.0.0.1); {PRIVATE_HINT}"),
    ("https://192.168.1.1/hook", {}, f"a private address (192.168.1.1); {PRIVATE_HINT}"),
    ("http://[fc00::1]/", {}, f"a private address (fc00::1); {PRIVATE_HINT}"),
    ("http://127.0.0.1:9/", {}, f"a private address (127.0.0.1); {PRIVATE_HINT}"),
    ("http://localhost:9/", {}, f"; {PRIVATE_HINT}"),  # resolved here, judged by its addresses
    (
        f"http://127.0.0.1:{OWN_PORT}/",
        {**PRIVATE, "port": OWN_PORT},
        f"this Shipyard server itself (127.0.0.1 port {OWN_PORT}): refused",
    ),
    (
        f"http://localhost:{OWN_PORT}/",
        {**PRIVATE, "port": OWN_PORT},
        f"this Shipyard server itself (127.0.0.1 port {OWN_PORT}): refused",
    ),
]


@pytest.mark.parametrize(("url", "extra", "reason"), ADD_CASES)
def test_a_forbidden_channel_url_is_refused_when_added(
    client: TestClient, project: str, url: str, reason: str
) -> None:
    r = client.post(f"{A}/channels", json={"name": "ops", "url": url})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["title"] == "Unprocessable content"
    assert problem["detail"].startswith("channel URL ") and reason in problem["detail"]
    assert "/latest" not in problem["detail"] and "/hook" not in problem["detail"]  # secret path
    assert client.get(f"{A}/channels").json() == []  # nothing created


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("https://1.1.1.1/hook", {}),  # global; nothing is sent (no test notification asked)
        ("http://10.0.0.1:8080/hook", PRIVATE),
        ("http://127.0.0.1:9/hook", PRIVATE),  # loopback, another port than the server's
    ],
)
def test_allowed_targets_are_added(client: TestClient, project: str, url: str) -> None:
    r = client.post(f"{A}/channels", json={"name": "ops", "url": url})
    assert r.status_code == 201, r.text
    assert [c["name"] for c in client.get(f"{A}/channels").json()] == ["ops"]


def test_every_address_of_a_name_must_pass_and_an_unresolved_name_is_checked_later() -> None:
    # The resolvers stand in for DNS (a name with two addresses, a name not there yet).
    def two(host: str, port: int) -> list[targets.IPAddress]:
        return [ipaddress.ip_address("1.1.1.1"), ipaddress.ip_address("10.0.0.5")]

    with pytest.raises(targets.Refused, match=r"private address \(10\.0\.0\.5\)"):
        targets.check_new("https://hooks.example/x", targets.Policy(resolve=two))

    def nowhere(host: str, port: int) -> list[targets.IPAddress]:
        raise targets.Unresolved(f"cannot resolve {host}")

    targets.check_new("https://not-yet.example/x", targets.Policy(resolve=nowhere))
    later = targets.Policy(resolve=nowhere)
    delivery = notify.deliver("c", "webhook", "https://not-yet.example/x", FIELDS, later)
    assert not delivery.ok and "cannot resolve not-yet.example" in delivery.error


# -- delivering -----------------------------------------------------------------------------

DELIVER_CASES = [
    ("127.0.0.1", False, False, f"a private address (127.0.0.1); {PRIVATE_HINT}"),
    ("localhost", False, False, f"; {PRIVATE_HINT}"),
    ("[::ffff:127.0.0.1]", False, False, f"a private address (127.0.0.1); {PRIVATE_HINT}"),
    ("0.0.0.0", True, False, "an unspecified or multicast address (0.0.0.0): refused"),
    ("127.0.0.1", True, True, "this Shipyard server itself (127.0.0.1 port "),
    ("localhost", True, True, "this Shipyard server itself (127.0.0.1 port "),
]


@pytest.mark.parametrize(("host", "private", "own_port", "reason"), DELIVER_CASES)
def test_a_delivery_to_a_forbidden_target_fails_without_connecting(
    listener: Listener, tmp_path: Path, host: str, private: bool, own_port: bool, reason: str
) -> None:
    # own_port: the listener stands where this server's port is (settings.port)
    port = {"port": listener.port} if own_port else {}
    rules = policy(tmp_path, allow_private_webhooks=private, **port)
    url = f"http://{host}:{listener.port}/hook"
    delivery = notify.deliver("ops", "webhook", url, FIELDS, rules)
    assert not delivery.ok and delivery.status is None and delivery.attempts == 1, delivery
    assert delivery.error.startswith("channel URL ") and reason in delivery.error
    assert "/hook" not in delivery.error
    assert listener.connected_since() == 0


def test_the_channel_test_route_refuses_a_target_the_server_no_longer_allows(
    app: FastAPI, client: TestClient, project: str, listener: Listener
) -> None:
    url = f"http://127.0.0.1:{listener.port}/hook"
    # Added while SHIPYARD_ALLOW_PRIVATE_WEBHOOKS was on; this server has it off.
    with app.state.runtime.db.session() as s:
        local = auth.user_by_id(s, auth.get_project(s, project).created_by)
        actor = auth.Actor(local.id, local.name, local.is_admin)
        body = ChannelCreate(name="old", url=url)
        monitoring.create_channel(s, actor, project, body, targets.Policy(allow_private=True))
    r = client.post(f"{A}/channels/old/test")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "channel": "old",
        "ok": False,
        "status": None,
        "error": f"channel URL http://127.0.0.1:{listener.port}/… points at a private address "
        f"(127.0.0.1); {PRIVATE_HINT}",
        "attempts": 1,
    }
    assert listener.connected_since() == 0


@pytest.mark.parametrize("extra", [PRIVATE])
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed(
    client: TestClient, project: str, tmp_path: Path, status: int
) -> None:
    elsewhere = Hook()
    first = Hook(status=status, location=elsewhere.url + "/stolen")
    try:
        delivery = notify.deliver(
            "ops", "webhook", first.url + "/hook", FIELDS, policy(tmp_path, **PRIVATE)
        )
        assert not delivery.ok and delivery.status == status and delivery.attempts == 1
        assert delivery.error == f"HTTP {status}: ok"
        r = client.post(f"{A}/channels", json={"name": "ops", "url": first.url + "/hook"})
        assert r.status_code == 201, r.text
        r = client.post(f"{A}/channels/ops/test")
        assert r.json()["ok"] is False and r.json()["status"] == status
        assert [path for path, _ in first.requests] == ["/hook", "/hook"]
        assert elsewhere.requests == []
    finally:
        first.close()
        elsewhere.close()


def test_a_delivery_keeps_the_name_as_host_header(tmp_path: Path) -> None:
    hook = Hook()
    try:
        url = f"http://localhost:{hook.port}/hook"
        delivery = notify.deliver("ops", "webhook", url, FIELDS, policy(tmp_path, **PRIVATE))
        assert delivery.ok and delivery.status == 200, delivery
        assert hook.requests == [("/hook", f"localhost:{hook.port}")]
    finally:
        hook.close()


def test_a_delivery_connects_to_the_address_it_checked_not_the_name_again() -> None:
    # The resolver answers 127.0.0.2 for "localhost" (as a DNS answer that changed would); the
    # system would say 127.0.0.1, where a listener on the same port records any connection.
    hook = Hook(host="127.0.0.2")
    try:
        listener = Listener(port=hook.port)
    except OSError:
        hook.close()
        pytest.skip(f"port {hook.port} is taken on 127.0.0.1")
    calls: list[str] = []

    def answer(host: str, port: int) -> list[targets.IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.2")]

    try:
        url = f"http://localhost:{hook.port}/hook?x=1"
        pinned = targets.Policy(allow_private=True, resolve=answer)
        delivery = notify.deliver("ops", "webhook", url, FIELDS, pinned)
        assert delivery.ok, delivery
        assert hook.requests == [("/hook?x=1", f"localhost:{hook.port}")]
        assert calls == ["localhost"]  # one look-up, checked, then used
        assert listener.connected_since() == 0
    finally:
        listener.close()
        hook.close()


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` only (no IP address), and its key; it signs itself."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_checks_the_certificate_against_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path, "localhost")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts this certificate only
    hook = Hook(tls=tls)
    try:
        allow = policy(tmp_path, **PRIVATE)
        url = f"https://localhost:{hook.port}/hook"
        delivery = notify.deliver("ops", "webhook", url, FIELDS, allow)
        assert delivery.ok, delivery  # connected to 127.0.0.1, verified as localhost
        assert hook.requests == [("/hook", f"localhost:{hook.port}")]
        # The same server by its address: the certificate does not name it, so TLS refuses.
        by_ip = f"https://127.0.0.1:{hook.port}/hook"
        delivery = notify.deliver("ops", "webhook", by_ip, FIELDS, allow)
        assert not delivery.ok and "CERTIFICATE_VERIFY_FAILED" in delivery.error, delivery
    finally:
        hook.close()

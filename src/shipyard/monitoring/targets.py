"""Where notifications may go: a channel URL is judged by every address its host resolves to.

A webhook is a request the server makes on a user's behalf, so a channel URL must not turn it into
a way in (server-side request forgery). Each resolved address is judged as follows, the first
rule that matches deciding:

1. link-local (169.254.0.0/16, fe80::/10) or a cloud metadata address: always refused;
2. unspecified (0.0.0.0, ::), which reaches this machine, or multicast: always refused;
3. this server itself, an address of this machine (loopback, the bind address, an interface's)
   with the server's own port: always refused;
4. reserved (240.0.0.0/4, most of ::/8): always refused;
5. any other address that is not global (10/8, 172.16/12, 192.168/16, 127/8, ::1, fc00::/7,
   100.64/10 ...): refused unless ``SHIPYARD_ALLOW_PRIVATE_WEBHOOKS`` is on.

IPv6 forms that carry an IPv4 address (``::ffff:a.b.c.d``, NAT64's ``64:ff9b::a.b.c.d``) are
judged as that IPv4 address. A host is taken as an IP literal when it is one; otherwise it is
resolved, and every address must pass (a name with one public and one private address is
refused). The sender connects to the addresses it checked (:meth:`Target.pinned`), never to the
name again, so a DNS answer that changes between the check and the connection cannot switch the
target.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import psutil

from shipyard.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]

# Instance metadata services: AWS, GCP, Azure, OpenStack, DigitalOcean... (169.254.169.254, and
# AWS's IPv6 fd00:ec2::254), Alibaba Cloud (100.100.100.200), Azure's WireServer (168.63.129.16,
# a public address) and Oracle Cloud (192.0.0.192). Credentials live behind them.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
PRIVATE_HINT = "set SHIPYARD_ALLOW_PRIVATE_WEBHOOKS=true to allow private networks"


class Refused(ValueError):
    """The URL may not be sent to; the message says which rule refused it."""


class Unresolved(OSError):
    """The URL's host does not resolve (now: it may later)."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (the system resolver), in its order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(f"cannot resolve {host}: {exc}") from exc
    out: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in out:
                out.append(address)
    if not out:
        raise Unresolved(f"cannot resolve {host}: no IPv4 or IPv6 address")
    return out


def own_addresses() -> set[IPAddress]:
    """The addresses of this machine's network interfaces."""
    out: set[IPAddress] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    out.add(effective(ipaddress.ip_address(a.address.split("%")[0])))
                except ValueError:
                    continue
    return out


def effective(address: IPAddress) -> IPAddress:
    """The address a connection really goes to: the IPv4 one inside an IPv4-mapped or NAT64
    IPv6 address, else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@dataclass(frozen=True, slots=True)
class Policy:
    """What this server may send notifications to, from its settings (:meth:`of`)."""

    allow_private: bool = False
    port: int = 8000  # the server's own port
    bind_host: str = "127.0.0.1"
    resolve: Resolver = field(default=resolve, compare=False)

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(settings.allow_private_webhooks, settings.port, settings.host)

    def server_addresses(self) -> set[IPAddress]:
        """The addresses this server may be reached at: its interfaces' and its bind address."""
        ours = own_addresses()
        try:
            ours.add(effective(ipaddress.ip_address(self.bind_host)))
        except ValueError:  # a name: what it resolves to
            try:
                ours.update(effective(a) for a in self.resolve(self.bind_host, self.port))
            except Unresolved:
                pass
        return ours


@dataclass(frozen=True, slots=True)
class Target:
    """A checked channel URL and the addresses it may be sent to, in the resolver's order."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        """The ``Host`` header the URL's own host gets (``name`` or ``name:port``)."""
        return self.url.netloc.decode("ascii")

    @property
    def server_name(self) -> str:
        """The name TLS sends (SNI) and checks the certificate against."""
        return self.url.raw_host.decode("ascii")

    def pinned(self, address: IPAddress) -> httpx.URL:
        """The URL with its host replaced by a checked address (same scheme, port, path, query)."""
        return self.url.copy_with(host=str(address), port=port_of(self.url))


def shown(url: httpx.URL) -> str:
    """The URL as a refusal shows it: scheme and host (its path and user may be credentials)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}/…"


def port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def parse(url: str) -> httpx.URL:
    """The URL as the sender reads it; http(s) with a host, or :class:`Refused`."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"channel URL is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise Refused("channel URL must be an http:// or https:// URL with a host")
    return parsed


def addresses(url: httpx.URL, policy: Policy) -> list[IPAddress]:
    """The addresses of the URL's host: itself when an IP literal, else resolved
    (:class:`Unresolved` when it does not resolve)."""
    host = url.raw_host.decode("ascii")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return policy.resolve(host, port_of(url))


def judge(url: httpx.URL, address: IPAddress, policy: Policy, ours: set[IPAddress]) -> None:
    """Refuse ``url`` if sending to ``address`` breaks a rule (see the module doc)."""
    ip = effective(address)
    where = f"channel URL {shown(url)} points at"
    if ip.is_link_local or ip in METADATA:
        raise Refused(f"{where} a link-local or cloud metadata address ({ip}): refused")
    if ip.is_unspecified or ip.is_multicast:
        raise Refused(f"{where} an unspecified or multicast address ({ip}): refused")
    if port_of(url) == policy.port and (ip.is_loopback or ip in ours):
        raise Refused(f"{where} this Shipyard server itself ({ip} port {policy.port}): refused")
    if ip.is_reserved and not ip.is_loopback:  # ::1 sits in the reserved ::/8: private below
        raise Refused(f"{where} a reserved address ({ip}): refused")
    if not ip.is_global and not policy.allow_private:
        raise Refused(f"{where} a private address ({ip}); {PRIVATE_HINT}")


def check(url: str, policy: Policy) -> Target:
    """Resolve the URL's host and judge every address: the target to connect to, or
    :class:`Refused` (a rule) or :class:`Unresolved` (no address now)."""
    parsed = parse(url)
    found = addresses(parsed, policy)
    ours = policy.server_addresses()
    for address in found:
        judge(parsed, address, policy, ours)
    return Target(parsed, tuple(found))


def check_new(url: str, policy: Policy) -> None:
    """Judge a channel URL as it is added: :class:`Refused`, or nothing. A host that does not
    resolve yet is let through: it is checked again before each delivery."""
    try:
        check(url, policy)
    except Unresolved:
        pass

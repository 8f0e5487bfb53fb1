"""Which addresses the gateway may download from (SSRF defence).

A host is fetched only if EVERY address it resolves to is public, or is allowed by the
GATEWAY_ALLOWED_INTERNAL allowlist. The resolver below hands aiohttp exactly the addresses it
checked, so the connection goes to a checked address (no second lookup, no DNS rebinding),
while the URL's host name still drives the Host header and TLS SNI/certificate checks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.contract import allowlist_entry

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> IP address strings. Tests inject one to resolve names without DNS.
Lookup = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; not "private" in 3.11
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Legacy IPv4 spellings (2130706433, 0x7f.1, 017700000001): the last label is numeric.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class AddressRefusedError(Exception):
    """The URL's host is, or resolves to, an address the gateway must not connect to."""


class UnresolvableHostError(Exception):
    """The host name has no address."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv6 wrappers of IPv4 included)."""
    if (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip not in _CGNAT
    if ip.is_site_local:  # fec0::/10, deprecated but still routed internally by some
        return False
    inner = embedded_ipv4(ip)
    return inner is None or is_public(inner)


def _never_allowed(ip: IPAddress) -> bool:
    # Not a real destination even when allowlisted: 0.0.0.0/:: reach the local host.
    return ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255")


def parse_ip(host: str) -> IPAddress | None:
    """The address if host is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def looks_numeric(host: str) -> bool:
    """Host names whose last label is a number are legacy IPv4 spellings, never names."""
    label = normalise_host(host).rsplit(".", 1)[-1]
    return bool(_NUMERIC_LABEL.fullmatch(label))


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus allowlisted host names (any address) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AddressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            # The grammar is the contract's, so the program's preview accepts the same entries.
            parsed = allowlist_entry(raw)
            if isinstance(parsed, str):
                hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, ip: IPAddress) -> bool:
        if _never_allowed(ip):
            return False
        if normalise_host(host) in self.hosts or is_public(ip):
            return True
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        return any(c in net for c in candidates for net in self.networks)

    def check(self, host: str, ip: IPAddress) -> None:
        if not self.allows(host, ip):
            raise AddressRefusedError(f"address {ip} of host {host!r} is not allowed")

    def check_url_host(self, host: str) -> None:
        """Refuse IP literals that are not allowed and legacy numeric IPv4 spellings.

        Host names are checked after resolution, by SafeResolver.
        """
        ip = parse_ip(host)
        if ip is not None:
            self.check(host, ip)
        elif looks_numeric(host):
            raise AddressRefusedError(f"host {host!r} is not a canonical IP address or name")


async def system_lookup(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (getaddrinfo in a thread, like aiohttp's default)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvableHostError(f"cannot resolve host {host!r}") from exc
    except (UnicodeError, ValueError) as exc:  # the IDNA codec refuses the name (label > 63...)
        raise UnresolvableHostError(f"host {host!r} is not a valid host name") from exc
    return [str(info[4][0]) for info in infos]


class SafeResolver(AbstractResolver):
    """aiohttp resolver that refuses a host unless every address it resolves to is allowed."""

    def __init__(self, policy: AddressPolicy, lookup: Lookup = system_lookup) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raw = await self._lookup(host, port)
        addresses = [ip for ip in (parse_ip(a) for a in raw) if ip is not None]
        if not addresses:
            raise UnresolvableHostError(f"cannot resolve host {host!r}")
        for ip in addresses:  # one bad address refuses the host: no mixed answers
            self._policy.check(host, ip)
        results: list[ResolveResult] = []
        for ip in dict.fromkeys(addresses):
            v6 = isinstance(ip, ipaddress.IPv6Address)
            if family not in (socket.AF_UNSPEC, socket.AF_INET6 if v6 else socket.AF_INET):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(ip),
                    port=port,
                    family=socket.AF_INET6 if v6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise UnresolvableHostError(f"host {host!r} has no address of the requested family")
        return results

    async def close(self) -> None:
        return None

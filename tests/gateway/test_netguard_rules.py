"""The SSRF guard's exact rules: the IPv4 address inside each IPv6 wrapper, which wrapped
addresses are public, what an allow-list admits (names in any spelling, networks also through
a wrapper, never the unspecified, multicast or broadcast addresses), the refusal messages, and
exactly what the resolver hands aiohttp."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from gateway.contract import ContractError
from gateway.netguard import (
    AddressPolicy,
    AddressRefusedError,
    SafeResolver,
    UnresolvableHostError,
    embedded_ipv4,
    is_public,
    looks_numeric,
    normalise_host,
    parse_ip,
    system_lookup,
)
from tests.gateway.support import fake_dns

pytestmark = pytest.mark.asyncio
ip = ipaddress.ip_address


@pytest.mark.parametrize(
    ("address", "inner"),
    [("::ffff:10.0.0.1", "10.0.0.1"), ("2002:808:808::1", "8.8.8.8"),
     ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"), ("64:ff9b::a00:1", "10.0.0.1"),
     ("64:ff9b::ffff:ffff", "255.255.255.255"), ("2606:4700:4700::1111", None), ("::1", None)],
)  # fmt: skip
async def test_the_ipv4_address_inside_an_ipv6_one(address: str, inner: str | None) -> None:
    assert embedded_ipv4(ip(address)) == (None if inner is None else ip(inner))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "public"),
    [("2002:808:808::1", True), ("2002:a00:1::1", False), ("2002:6440:1::1", False),
     ("2606:4700:4700::1111", True), ("100.63.255.255", True), ("100.64.0.0", False),
     ("100.127.255.255", False), ("100.128.0.0", True), ("fec0::1", False), ("8.8.8.8", True)],
)  # fmt: skip
async def test_public_addresses_and_their_wrappers(address: str, public: bool) -> None:
    assert is_public(ip(address)) is public


@pytest.mark.parametrize(
    ("host", "parsed"),
    [("10.0.0.1", "10.0.0.1"), ("[::1]", "::1"), ("::1", "::1"), ("[fe80::1]", "fe80::1"),
     ("example.com", None), ("10.0.0.256", None), ("[example.com]", None),
     ("X10.0.0.1", None), ("[::1]X", None)],
)  # fmt: skip
async def test_ip_literals(host: str, parsed: str | None) -> None:
    assert parse_ip(host) == (None if parsed is None else ip(parsed))


@pytest.mark.parametrize(
    ("host", "numeric"),
    [("a.0x", True), ("a.0X1F", True), ("a.0xg", False), ("example.123", True),
     ("123.example", False), ("  Example.0x7f.  ", True), ("12a", False), ("0x", True),
     ("x0x1", False), ("1.2.3.4", True)],
)  # fmt: skip
async def test_legacy_numeric_spellings(host: str, numeric: bool) -> None:
    assert looks_numeric(host) is numeric


async def test_host_names_are_compared_normalised() -> None:
    assert normalise_host("  Images.Internal.. ") == "images.internal"
    assert normalise_host("svc.BOX.") == "svc.box"
    policy = AddressPolicy.from_entries(["Images.Internal."])
    assert policy.allows("IMAGES.internal.", ip("10.1.2.3"))
    assert not policy.allows("other.internal", ip("10.1.2.3"))


async def test_from_entries_splits_names_and_networks() -> None:
    policy = AddressPolicy.from_entries(["a.internal", "10.0.0.0/8", "[fd00::1]", "A.internal"])
    assert policy == AddressPolicy(
        frozenset({"a.internal"}),
        (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::1/128")),
    )
    assert AddressPolicy.from_entries([]) == AddressPolicy(frozenset(), ())
    with pytest.raises(ContractError):
        AddressPolicy.from_entries(["not a host"])


async def test_an_allowlisted_network_also_admits_its_addresses_in_a_wrapper() -> None:
    policy = AddressPolicy.from_entries(["10.0.0.0/8"])
    for address in ("10.0.0.1", "::ffff:10.0.0.1", "2002:a00:1::1", "64:ff9b::a00:1"):
        assert policy.allows("x.example", ip(address)), address
    for address in ("172.16.0.1", "::ffff:172.16.0.1", "fd00::1", "2002:ac10:1::1"):
        assert not policy.allows("x.example", ip(address)), address
    v6 = AddressPolicy.from_entries(["fd00::/8"])
    assert v6.allows("x.example", ip("fd00::1"))
    assert not v6.allows("x.example", ip("10.0.0.1"))


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1"])
async def test_never_allowed_even_by_name_or_network(address: str) -> None:
    policy = AddressPolicy.from_entries(["0.0.0.0/0", "::/0", "any.internal"])
    assert not policy.allows("any.internal", ip(address))
    with pytest.raises(AddressRefusedError) as refused:
        policy.check("any.internal", ip(address))
    assert str(refused.value) == f"address {address} of host 'any.internal' is not allowed"


async def test_allowlisted_broadcast_neighbours_are_allowed() -> None:
    policy = AddressPolicy.from_entries(["0.0.0.0/0"])
    assert policy.allows("x", ip("255.255.255.254"))
    assert policy.allows("x", ip("0.0.0.1"))


async def test_the_refusal_names_the_address_and_the_host() -> None:
    with pytest.raises(AddressRefusedError) as refused:
        AddressPolicy().check("db.internal", ip("10.0.0.1"))
    assert str(refused.value) == "address 10.0.0.1 of host 'db.internal' is not allowed"
    AddressPolicy().check("example.com", ip("93.184.216.34"))


async def test_url_hosts_that_are_ip_literals_or_numeric_spellings() -> None:
    policy = AddressPolicy.from_entries(["10.0.0.0/8"])
    policy.check_url_host("10.1.1.1")
    policy.check_url_host("example.com")  # names are checked once resolved
    policy.check_url_host("8.8.8.8")
    with pytest.raises(AddressRefusedError) as literal:
        policy.check_url_host("[::1]")
    assert str(literal.value) == "address ::1 of host '[::1]' is not allowed"
    with pytest.raises(AddressRefusedError) as numeric:
        policy.check_url_host("0x7f.1")
    assert str(numeric.value) == "host '0x7f.1' is not a canonical IP address or name"


# --- the resolver --------------------------------------------------------------------------


def result(host: str, address: str, port: int, family: socket.AddressFamily) -> dict[str, Any]:
    return {"hostname": host, "host": address, "port": port, "family": family, "proto": 0,
            "flags": socket.AI_NUMERICHOST}  # fmt: skip


async def test_the_resolver_hands_over_each_checked_address_once_in_order() -> None:
    lookup = fake_dns({"d.example": ["2606:4700::1111", "93.184.216.34", "junk", "93.184.216.34"]})
    resolver = SafeResolver(AddressPolicy(), lookup)
    assert await resolver.resolve("d.example", 8080, socket.AF_UNSPEC) == [
        result("d.example", "2606:4700::1111", 8080, socket.AF_INET6),
        result("d.example", "93.184.216.34", 8080, socket.AF_INET),
    ]
    assert await resolver.resolve("d.example", 80, socket.AF_INET6) == [
        result("d.example", "2606:4700::1111", 80, socket.AF_INET6)
    ]
    assert await resolver.resolve("d.example", 80) == [
        result("d.example", "93.184.216.34", 80, socket.AF_INET)
    ]
    assert await resolver.resolve("d.example") == [
        result("d.example", "93.184.216.34", 0, socket.AF_INET)
    ]
    await resolver.close()


async def test_the_resolver_refusals() -> None:
    lookup = fake_dns({"v4.example": ["93.184.216.34"], "junk.example": ["junk", ""],
                       "none.example": [], "in.example": ["10.0.0.1"]})  # fmt: skip
    resolver = SafeResolver(AddressPolicy(), lookup)
    with pytest.raises(UnresolvableHostError) as family:
        await resolver.resolve("v4.example", 80, socket.AF_INET6)
    assert str(family.value) == "host 'v4.example' has no address of the requested family"
    for host in ("junk.example", "none.example"):
        with pytest.raises(UnresolvableHostError) as nothing:
            await resolver.resolve(host, 80)
        assert str(nothing.value) == f"cannot resolve host {host!r}"
    with pytest.raises(AddressRefusedError) as internal:
        await resolver.resolve("in.example", 80)
    assert str(internal.value) == "address 10.0.0.1 of host 'in.example' is not allowed"
    allowed = SafeResolver(AddressPolicy.from_entries(["in.example"]), lookup)
    assert await allowed.resolve("in.example", 80) == [
        result("in.example", "10.0.0.1", 80, socket.AF_INET)
    ]


async def test_the_system_lookup_of_literals() -> None:
    assert await system_lookup("127.0.0.1", 80) == ["127.0.0.1"]
    assert await system_lookup("::1", 80) == ["::1"]


async def test_the_system_lookup_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnresolvableHostError) as invalid:
        await system_lookup("a" * 64 + ".example", 80)
    assert str(invalid.value) == f"host {'a' * 64 + '.example'!r} is not a valid host name"

    async def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", unknown)
    with pytest.raises(UnresolvableHostError) as unresolved:
        await system_lookup("nowhere.example", 80)
    assert str(unresolved.value) == "cannot resolve host 'nowhere.example'"


async def test_the_system_lookup_asks_for_stream_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[Any, ...]] = []

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        asked.append((host, port, kwargs))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await system_lookup("example.com", 443) == ["93.184.216.34"]
    assert asked == [("example.com", 443, {"type": socket.SOCK_STREAM})]

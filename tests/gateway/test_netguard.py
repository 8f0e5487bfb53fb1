from __future__ import annotations

import ipaddress
import re
import socket

import pytest

from gateway.netguard import (
    AddressPolicy,
    AddressRefusedError,
    SafeResolver,
    UnresolvableHostError,
    is_public,
    looks_numeric,
)
from tests.gateway.support import fake_dns

pytestmark = pytest.mark.asyncio

BLOCKED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.254",
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "fc00::1",  # ULA
    "fd12:3456::1",
    "fe80::1",  # link-local
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001::1",  # Teredo
    "2001:db8::1",  # documentation
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888"]


@pytest.mark.parametrize("address", BLOCKED)
async def test_internal_addresses_are_not_public(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    with pytest.raises(AddressRefusedError):
        AddressPolicy().check("example.com", ip)


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_addresses_pass(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public(ip)
    AddressPolicy().check("example.com", ip)


async def test_allowlisted_network_admits_only_its_addresses() -> None:
    policy = AddressPolicy.from_entries(["127.0.0.1/32", "10.1.0.0/16"])
    assert policy.allows("x", ipaddress.ip_address("127.0.0.1"))
    assert policy.allows("x", ipaddress.ip_address("10.1.2.3"))
    assert policy.allows("x", ipaddress.ip_address("::ffff:10.1.2.3"))  # same host via v6
    assert not policy.allows("x", ipaddress.ip_address("127.0.0.2"))
    assert not policy.allows("x", ipaddress.ip_address("10.2.0.1"))
    assert not policy.allows("x", ipaddress.ip_address("169.254.169.254"))


async def test_allowlisted_name_admits_any_address_for_that_name_only() -> None:
    policy = AddressPolicy.from_entries(["Images.Internal."])
    assert policy.allows("images.internal", ipaddress.ip_address("10.0.0.5"))
    assert not policy.allows("other.internal", ipaddress.ip_address("10.0.0.5"))


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255"])
async def test_some_addresses_are_never_allowed(address: str) -> None:
    policy = AddressPolicy.from_entries(["0.0.0.0/0", "::/0", "images.internal"])
    assert not policy.allows("images.internal", ipaddress.ip_address(address))


@pytest.mark.parametrize("entry", ["not a host", "http://x", "10.0.0.0/33", "1.2.3.999"])
async def test_bad_allowlist_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry"):
        AddressPolicy.from_entries([entry])


@pytest.mark.parametrize(
    ("host", "numeric"),
    [
        *[(h, True) for h in ("2130706433", "127.1", "0x7f.1", "017700000001")],
        *[(h, False) for h in ("example.com", "images.test", "a1.b2")],
    ],
)
async def test_legacy_numeric_hosts_are_recognised(host: str, numeric: bool) -> None:
    assert looks_numeric(host) is numeric
    if numeric:
        with pytest.raises(AddressRefusedError):
            AddressPolicy().check_url_host(host)


async def test_resolver_returns_exactly_the_checked_addresses() -> None:
    resolver = SafeResolver(AddressPolicy(), fake_dns({"ok.example": ["93.184.216.34"]}))
    [result] = await resolver.resolve("ok.example", 443, socket.AF_UNSPEC)
    assert result["host"] == "93.184.216.34"
    assert result["hostname"] == "ok.example"  # kept for the Host header and TLS SNI
    assert result["port"] == 443


async def test_resolver_refuses_a_host_with_any_internal_address() -> None:
    lookup = fake_dns({"mixed.example": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(AddressRefusedError, match=re.escape("10.0.0.1")):
        await SafeResolver(AddressPolicy(), lookup).resolve("mixed.example", 80, socket.AF_UNSPEC)


async def test_resolver_reports_unresolvable_names() -> None:
    with pytest.raises(UnresolvableHostError):
        await SafeResolver(AddressPolicy(), fake_dns({})).resolve("nowhere.example", 80)


async def test_resolver_filters_by_requested_family() -> None:
    lookup = fake_dns({"dual.example": ["93.184.216.34", "2606:4700:4700::1111"]})
    results = await SafeResolver(AddressPolicy(), lookup).resolve(
        "dual.example", 80, socket.AF_INET
    )
    assert [r["host"] for r in results] == ["93.184.216.34"]

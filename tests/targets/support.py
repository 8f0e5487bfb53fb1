"""Shared by the target tests: a target's Platform built alone under the mock runtime."""

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime.sync_await import _sync_await

from config.stack import parse
from targets import Platform, platform_for
from tools.render import run_under_mocks


def on_platform(
    use: Callable[[Platform], Mapping[str, Any]], config: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `use(platform)` for a stack of `config` under the mock runtime: the resources it
    registered, and what `use` returned, resolved."""
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    resolved: dict[str, Any] = {}

    def program() -> None:
        platform = platform_for(parse(raw))
        found = _sync_await(pulumi.Output.from_input(dict(use(platform))).future())
        resolved.update(found or {})

    return run_under_mocks("test", raw, program), resolved


def service(platform: Platform, type_: str = "NodePort", namespace: str = "models") -> Any:
    """A bare Service named `svc` on the platform's provider, for its exposure."""
    return k8s.core.v1.Service(
        "svc",
        metadata=k8s.meta.v1.ObjectMetaArgs(namespace=namespace),
        spec=k8s.core.v1.ServiceSpecArgs(type=type_),
        opts=pulumi.ResourceOptions(provider=platform.provider),
    )

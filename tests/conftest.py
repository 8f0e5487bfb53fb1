"""Shared fixtures: render the real program offline for a stack config, as users do."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.render import Rendered, render_stack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted(PROJECT_ROOT.glob("Pulumi.*.yaml"))
# Stacks only tests render (e.g. EKS Auto Mode), kept beside the committed ones' checks.
FIXTURE_STACK_FILES = sorted((PROJECT_ROOT / "tests" / "fixtures" / "stacks").glob("Pulumi.*.yaml"))


def dev_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.dev.yaml").read_text())["config"]


def eks_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.eks.yaml").read_text())["config"]


def write_stack(directory: Path, config: dict[str, Any], stack: str = "test") -> Path:
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied one level into structured keys; None deletes a key (at the
    top level, or inside a structured key)."""
    config = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        elif isinstance(value, dict) and isinstance(config.get(key), dict):
            inner = {**config[key], **value}
            config[key] = {k: v for k, v in inner.items() if v is not None}
        else:
            config[key] = value
    return config


RenderFn = Callable[..., Rendered]


@pytest.fixture
def render_dev(tmp_path: Path) -> RenderFn:
    """Render the dev stack with some keys changed: `render_dev({"tfserving:...": ...})`."""

    def render(changes: dict[str, Any] | None = None) -> Rendered:
        return render_stack(write_stack(tmp_path, merged(dev_config(), changes or {})))

    return render


@pytest.fixture
def render_eks(tmp_path: Path) -> RenderFn:
    """Render the eks stack (as stack `eks`) with some keys changed, like `render_dev`."""

    def render(changes: dict[str, Any] | None = None) -> Rendered:
        config = merged(eks_config(), changes or {})
        return render_stack(write_stack(tmp_path, config, stack="eks"))

    return render


def resources_of(rendered: Rendered, type_: str) -> list[dict[str, Any]]:
    """Every resource (resources.json entry) of a Pulumi type, e.g. `eks:index:Cluster`."""
    return [r for r in rendered.resources if r["type"] == type_]


def one_resource(rendered: Rendered, type_: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in resources_of(rendered, type_) if name is None or r["name"] == name]
    assert len(found) == 1, f"expected one {type_} {name or ''}, found {len(found)}"
    return found[0]


def objects_of(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered.kubernetes_objects if o["kind"] == kind]


def one(rendered: Rendered, kind: str, name_prefix: str = "") -> dict[str, Any]:
    found = [o for o in objects_of(rendered, kind) if o["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} named {name_prefix}*, found {len(found)}"
    return found[0]

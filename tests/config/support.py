"""Shared by the settings tests: render a bad stack and return what it printed."""

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import PROJECT_ROOT, write_stack
from tools.render import __main__ as render

AUTOSCALING = "tfserving:autoscaling"
SERVER = "tfserving:server"
SERVICE = "tfserving:service"
MODEL = "tfserving:model"
CLUSTER = "tfserving:cluster"
REGISTRY = "tfserving:registry"
GATEWAY = "tfserving:gateway"


def render_expecting_error(tmp_path: Path, config: dict[str, Any], capsys: Any) -> str:
    """Render `config` as a stack file: it must exit 2, write nothing, and say why on stderr."""
    out = tmp_path / "out"
    code = render.main(["--stack-file", str(write_stack(tmp_path, config)), "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert not out.exists() or not any(out.iterdir()), "nothing may be written on bad config"
    assert stderr.strip(), "the error says what is wrong"
    return stderr


MULTI_MODEL = PROJECT_ROOT / "tests" / "fixtures" / "stacks" / "Pulumi.multi-model.yaml"


def canary_stack(canary: dict[str, Any], model: str = "half_plus_two") -> dict[str, Any]:
    """The multi-model fixture's config with a gateway canary on `model`: half_plus_two (labels
    stable and canary) or shapes (no labels)."""
    config = yaml.safe_load(MULTI_MODEL.read_text())["config"]
    gateway = {**config["tfserving:gateway"], "model": model, "canary": canary}
    if model == "half_plus_two":
        gateway |= {"inputName": "x", "outputName": "y", "labels": ["low", "high"], "topK": 1}
        gateway.pop("labelsFile")
    return {**config, "tfserving:gateway": gateway}

"""What the workflow tests share: the files, their parsed form, the pinned-action grammar."""

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from config.paths import PROJECT_ROOT

GITHUB = PROJECT_ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
DEPENDABOT = GITHUB / "dependabot.yml"
FILES = sorted(WORKFLOWS.glob("*.yml"))
CHECK_JSONSCHEMA = [sys.executable, "-m", "check_jsonschema"]
ZIZMOR = Path(sys.executable).parent / "zizmor"
# owner/repo[/path]@<40 hex commit> # vMAJOR.MINOR.PATCH: never a tag, @main or @latest, which
# can be moved to other code; the comment says which release the commit is (Dependabot updates
# both together).
USES = re.compile(r"^\s*(?:-\s+)?uses:")
USES_LINE = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<ref>\S+)"
    r"(?:\s+#\s*(?P<comment>.*?))?\s*$"
)
SHA = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^v(?P<major>\d+)\.\d+\.\d+$")
PULUMI_ACTION = "pulumi/actions@"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
DEV_PASSPHRASE = "tfserving-dev-only"
# Every job that touches the eks stack with AWS credentials, and the environment it runs in.
EKS_JOBS = {
    ("preview.yml", "eks"): "eks-preview",
    ("deploy.yml", "deploy"): "eks",
    ("destroy.yml", "destroy"): "eks",
}


def load_path(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def load(name: str) -> dict[str, Any]:
    return load_path(WORKFLOWS / name)


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action)]


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = steps_using(job, PULUMI_ACTION)
    return step["with"]

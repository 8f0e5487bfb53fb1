"""GitHub workflows: valid against the workflow schema (offline) and shaped as documented."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.paths import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
CHECK_JSONSCHEMA = [sys.executable, "-m", "check_jsonschema"]
# owner/repo@vMAJOR.MINOR.PATCH or @<40 hex>: never a moving @v7, @main or @latest.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")
PULUMI_ACTION = "pulumi/actions@"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action)]


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = steps_using(job, PULUMI_ACTION)
    return step["with"]


def test_the_four_workflows_exist() -> None:
    assert [f.name for f in FILES] == ["deploy.yml", "destroy.yml", "preview.yml", "test.yml"]


def test_schema_validation_offline() -> None:
    cmd = [*CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *map(str, FILES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_validation_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (WORKFLOWS / "test.yml").read_text().replace("contents: read", "contents: rw")
    )
    cmd = [*CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(broken)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "contents" in proc.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege_and_pinned(path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] in ({}, {"contents": "read"})
    for name, job in jobs(workflow).items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{path.name}:{name} has no explicit permissions"
        assert "write-all" not in str(perms)
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name}"
        writes = {scope for scope, level in perms.items() if level == "write"}
        # id-token only where AWS credentials are assumed; PR write only where comments are made.
        assume_role = steps_using(job, AWS_CREDENTIALS)
        assert ("id-token" in writes) == bool(assume_role), f"{path.name}:{name}"
        comments = [s for s in steps_using(job, PULUMI_ACTION) if s["with"].get("comment-on-pr")]
        assert ("pull-requests" in writes) == bool(comments), f"{path.name}:{name}"
        assert writes <= {"id-token", "pull-requests"}, f"{path.name}:{name}"
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}:{name}: {step['uses']}"
        for step in assume_role:
            assert "role-to-assume" in step["with"]
            assert "aws-access-key-id" not in step["with"]  # OIDC only, no stored keys


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_python_dependencies_installed_before_pulumi_runs(path: Path) -> None:
    for name, job in jobs(load(path.name)).items():
        steps = job.get("steps", [])
        for i, step in enumerate(steps):
            if str(step.get("uses", "")).startswith(PULUMI_ACTION):
                earlier = " ".join(str(s.get("run", "")) for s in steps[:i])
                assert "venv/bin/pip install -r requirements.txt" in earlier, f"{path.name}:{name}"
                if step["with"].get("policyPacks"):
                    assert "policy/venv/bin/pip install -r policy/requirements.txt" in earlier


def test_tests_run_on_every_push_and_pull_request() -> None:
    workflow = load("test.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["on"]["push"] is None  # every branch
    (job,) = jobs(workflow).values()
    assert any("make test" in str(s.get("run", "")) for s in job["steps"])


def test_previews_every_stack_with_an_edited_comment_and_the_policy_pack() -> None:
    workflow = load("preview.yml")
    assert set(workflow["on"]) == {"pull_request"}
    stacks = {}
    for job in jobs(workflow).values():
        if steps_using(job, PULUMI_ACTION):
            inputs = pulumi_step(job)
            stacks[inputs["stack-name"]] = job
            assert inputs["command"] == "preview"
            assert inputs["comment-on-pr"] is True
            assert inputs["edit-pr-comment"] is True
            assert inputs["policyPacks"] == "policy"
            assert (PROJECT_ROOT / inputs["policyPacks"] / "PulumiPolicy.yaml").is_file()
            assert inputs["stack-name"] in job["concurrency"]["group"]
    assert set(stacks) == {"dev", "eks"}
    assert steps_using(stacks["dev"], "medyagh/setup-minikube@")
    assert stacks["dev"]["env"]["PULUMI_BACKEND_URL"].startswith("file://")
    assert "vars.PULUMI_BACKEND_URL" in stacks["eks"]["env"]["PULUMI_BACKEND_URL"]
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in stacks["eks"]["env"]["PULUMI_CONFIG_PASSPHRASE"]


def test_eks_jobs_are_skipped_unless_configured() -> None:
    for name, job_id in (("preview.yml", "eks"), ("deploy.yml", "deploy")):
        job = jobs(load(name))[job_id]
        assert job["needs"] == "eks-config"
        assert job["if"] == "needs.eks-config.outputs.enabled == 'true'"


def test_one_queue_per_stack_for_everything_touching_eks() -> None:
    groups = {
        (name, job_id): jobs(load(name))[job_id]["concurrency"]
        for name, job_id in (
            ("preview.yml", "eks"),
            ("deploy.yml", "deploy"),
            ("destroy.yml", "destroy"),
        )
    }
    for where, concurrency in groups.items():
        assert concurrency["group"] == "pulumi-eks", where
        assert concurrency["cancel-in-progress"] is False, where  # never stop an update midway
        assert concurrency["queue"] == "max", where  # and never drop a queued one


def test_deploy_on_push_to_main_behind_the_protected_environment() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    job = jobs(workflow)["deploy"]
    assert job["environment"]["name"] == "eks"
    inputs = pulumi_step(job)
    assert (inputs["command"], inputs["stack-name"], inputs["policyPacks"]) == (
        "up",
        "eks",
        "policy",
    )
    assert "python -m tools.smoke --stack eks" in job["steps"][-1]["run"]


def test_destroy_is_manual_and_confirmed() -> None:
    workflow = load("destroy.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    confirm = workflow["on"]["workflow_dispatch"]["inputs"]["confirm"]
    assert confirm["required"] is True
    job = jobs(workflow)["destroy"]
    assert job["needs"] == "check"
    assert job["environment"]["name"] == "eks"
    assert (pulumi_step(job)["command"], pulumi_step(job)["stack-name"]) == ("destroy", "eks")


# --- the configuration check, run for real -----------------------------------------------------


def check_script(name: str, job_id: str) -> str:
    (step,) = [s for s in jobs(load(name))[job_id]["steps"] if s.get("id") == "check"]
    assert "${{" not in step["run"]  # everything comes in through env, nothing is templated
    return str(step["run"])


def run_check(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    out = tmp_path / "github_output"
    out.write_text("")
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(out), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode, proc.stdout, out.read_text()


CONFIGURED = {
    "BACKEND_URL": "s3://state-bucket/tfserving",
    "ROLE_ARN": "arn:aws:iam::123456789012:role/tfserving-ci",
    "HAS_PASSPHRASE": "true",
}


@pytest.mark.parametrize(
    ("name", "job_id"), [("preview.yml", "eks-config"), ("deploy.yml", "eks-config")]
)
def test_unconfigured_repository_gets_a_notice_and_a_skip(
    name: str, job_id: str, tmp_path: Path
) -> None:
    script = check_script(name, job_id)
    code, stdout, outputs = run_check(script, tmp_path, {"HAS_PASSPHRASE": "false"})
    assert code == 0  # skipping is not failing
    assert stdout.startswith(
        "::notice title=eks skipped::not configured: stack file Pulumi.eks.yaml"
    )
    for missing in ("PULUMI_BACKEND_URL", "AWS_ROLE_ARN", "PULUMI_CONFIG_PASSPHRASE", "AWS_REGION"):
        assert missing in stdout
    assert "enabled=false" in outputs.splitlines()


@pytest.mark.parametrize(
    ("name", "job_id"), [("preview.yml", "eks-config"), ("deploy.yml", "eks-config")]
)
def test_configured_repository_runs_with_the_stack_region(
    name: str, job_id: str, tmp_path: Path
) -> None:
    (tmp_path / "Pulumi.eks.yaml").write_text('config:\n  aws:region: "eu-west-1"\n')
    code, stdout, outputs = run_check(check_script(name, job_id), tmp_path, CONFIGURED)
    assert (code, stdout) == (0, "")
    assert outputs.splitlines() == ["region=eu-west-1", "enabled=true"]
    _, _, outputs = run_check(
        check_script(name, job_id), tmp_path, {**CONFIGURED, "REGION": "us-east-2"}
    )
    assert outputs.splitlines() == ["region=us-east-2", "enabled=true"]


def test_destroy_refuses_without_the_typed_stack_name(tmp_path: Path) -> None:
    script = check_script("destroy.yml", "check")
    code, stdout, _ = run_check(script, tmp_path, {**CONFIGURED, "CONFIRM": "yes", "REGION": "x"})
    assert code == 1
    assert "::error title=not confirmed::" in stdout
    code, _, outputs = run_check(script, tmp_path, {**CONFIGURED, "CONFIRM": "eks", "REGION": "x"})
    assert (code, outputs) == (0, "region=x\n")

"""The workflows' shell steps, run for real in a sandbox: guards, skips, roles, passphrases."""

import subprocess
from pathlib import Path

import pytest

from tests.workflows.support import (
    DEV_PASSPHRASE,
    EKS_JOBS,
    jobs,
    load,
)


def step_script(name: str, job_id: str, step_id: str) -> str:
    (step,) = [s for s in jobs(load(name))[job_id]["steps"] if s.get("id") == step_id]
    assert "${{" not in step["run"]  # everything comes in through env, nothing is templated
    return str(step["run"])


def check_script(name: str, job_id: str) -> str:
    return step_script(name, job_id, "check")


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[int, str, str]:
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


run_check = run_script

CONFIGURED = {
    "BACKEND_URL": "s3://state-bucket/tfserving",
    "ROLE_ARN": "arn:aws:iam::123456789012:role/tfserving-ci",
    "HEAD_REPO": "owner/tfserving",
    "BASE_REPO": "owner/tfserving",
    "ACTOR": "octocat",
}
ROLE_VARIABLE = {"preview.yml": "AWS_PREVIEW_ROLE_ARN", "deploy.yml": "AWS_ROLE_ARN"}


@pytest.mark.parametrize(
    ("name", "job_id"), [("preview.yml", "eks-config"), ("deploy.yml", "eks-config")]
)
def test_unconfigured_repository_gets_a_notice_and_a_skip(
    name: str, job_id: str, tmp_path: Path
) -> None:
    script = check_script(name, job_id)
    code, stdout, outputs = run_check(script, tmp_path, {})
    assert code == 0  # skipping is not failing
    assert stdout.startswith(
        "::notice title=eks skipped::not configured: stack file Pulumi.eks.yaml"
    )
    for missing in ("PULUMI_BACKEND_URL", ROLE_VARIABLE[name], "AWS_REGION"):
        assert f"variable {missing}" in stdout
    assert "enabled=false" in outputs.splitlines()


def test_the_preview_never_falls_back_to_the_deploy_role(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.eks.yaml").write_text('config:\n  aws:region: "eu-west-1"\n')
    env = {**CONFIGURED, "ROLE_ARN": ""}  # only AWS_ROLE_ARN would be set: ROLE_ARN is empty
    code, stdout, outputs = run_check(check_script("preview.yml", "eks-config"), tmp_path, env)
    assert code == 0
    assert stdout == (
        "::notice title=eks skipped::not configured: variable AWS_PREVIEW_ROLE_ARN (the "
        "read-only preview role). See README, CI/CD.\n"
    )
    assert "enabled=false" in outputs.splitlines()


@pytest.mark.parametrize(
    "who", [{"HEAD_REPO": "someone/tfserving"}, {"ACTOR": "dependabot[bot]"}], ids=str
)
def test_fork_and_dependabot_pull_requests_skip_the_eks_preview(
    who: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "Pulumi.eks.yaml").write_text('config:\n  aws:region: "eu-west-1"\n')
    script = check_script("preview.yml", "eks-config")
    code, stdout, outputs = run_check(script, tmp_path, {**CONFIGURED, **who})
    assert code == 0
    assert stdout.startswith("::notice title=eks skipped::no credentials for a pull request")
    assert outputs.splitlines() == ["enabled=false"]


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
    code, stdout, _ = run_check(script, tmp_path, {"CONFIRM": "eks", "REGION": "x"})
    assert code == 1
    assert "missing variable PULUMI_BACKEND_URL, variable AWS_ROLE_ARN" in stdout


@pytest.mark.parametrize(("where", "environment"), EKS_JOBS.items(), ids=str)
def test_the_passphrase_guard_runs_first(where: tuple[str, str], environment: str) -> None:
    name, job_id = where
    first = jobs(load(name))[job_id]["steps"][0]
    assert first["id"] == "passphrase"
    assert first["env"] == {"ENVIRONMENT": environment}


@pytest.mark.parametrize(("where", "environment"), EKS_JOBS.items(), ids=str)
@pytest.mark.parametrize(
    ("passphrase", "error"),
    [
        ("", "::error title=no passphrase::secret PULUMI_CONFIG_PASSPHRASE is not set in "),
        (DEV_PASSPHRASE, "::error title=dev passphrase::the eks stack must not use the public "),
    ],
)
def test_an_eks_job_refuses_an_empty_or_the_dev_passphrase(
    where: tuple[str, str], environment: str, passphrase: str, error: str, tmp_path: Path
) -> None:
    script = step_script(*where, "passphrase")
    env = {"ENVIRONMENT": environment, "PULUMI_CONFIG_PASSPHRASE": passphrase}
    code, stdout, _ = run_script(script, tmp_path, env)
    assert code == 1
    assert stdout.startswith(error)
    assert f"environment {environment}" in stdout
    assert DEV_PASSPHRASE not in stdout.replace(error, "")  # never echoes a passphrase


@pytest.mark.parametrize(("where", "environment"), EKS_JOBS.items(), ids=str)
def test_an_eks_job_accepts_a_real_passphrase(
    where: tuple[str, str], environment: str, tmp_path: Path
) -> None:
    script = step_script(*where, "passphrase")
    env = {"ENVIRONMENT": environment, "PULUMI_CONFIG_PASSPHRASE": "correct horse battery"}
    assert run_script(script, tmp_path, env) == (0, "", "")

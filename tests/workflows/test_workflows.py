"""GitHub workflows: valid against the workflow schema (offline) and shaped as documented.

Also the Dependabot config, and zizmor (the workflow security linter) run for real, offline.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from config.paths import PROJECT_ROOT
from tests.workflows.support import (
    AWS_CREDENTIALS,
    CHECK_JSONSCHEMA,
    DEPENDABOT,
    DEV_PASSPHRASE,
    EKS_JOBS,
    FILES,
    GITHUB,
    PULUMI_ACTION,
    SHA,
    USES,
    USES_LINE,
    VERSION_COMMENT,
    WORKFLOWS,
    ZIZMOR,
    jobs,
    load,
    load_path,
    pulumi_step,
    steps_using,
)


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
def test_least_privilege(path: Path) -> None:
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
        for step in assume_role:
            assert "role-to-assume" in step["with"]
            assert "aws-access-key-id" not in step["with"]  # OIDC only, no stored keys
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{path.name}:{name}"


# --- pinned actions ---------------------------------------------------------------------------


def uses_lines(path: Path) -> list[tuple[int, re.Match[str]]]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if USES.match(line):
            match = USES_LINE.match(line)
            assert match, f"{path.name}:{number}: unreadable uses: {line.strip()}"
            found.append((number, match))
    return found


def check_pins(path: Path) -> None:
    lines = uses_lines(path)
    for number, match in lines:
        where = f"{path.name}:{number}"
        assert SHA.match(match["ref"]), f"{where}: {match['action']}@{match['ref']} is not a SHA"
        assert VERSION_COMMENT.match(match["comment"] or ""), f"{where}: no # vX.Y.Z comment"
    # Every step's `uses:` is one of those lines (nothing hides in a flow mapping or a quote).
    in_yaml = [
        str(step["uses"])
        for job in jobs(load_path(path)).values()
        for step in job.get("steps", [])
        if "uses" in step
    ]
    assert in_yaml == [f"{m['action']}@{m['ref']}" for _, m in lines]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version_in_a_comment(path: Path) -> None:
    check_pins(path)


def test_one_commit_and_one_version_per_action_across_workflows() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in FILES:
        for _, match in uses_lines(path):
            pins.setdefault(match["action"], set()).add((match["ref"], match["comment"]))
    assert {action: len(refs) for action, refs in pins.items()} == dict.fromkeys(pins, 1)
    # configure-aws-credentials v6 runs on Node 24; v5's Node 20 is gone from the runners.
    ((_, aws_version),) = pins["aws-actions/configure-aws-credentials"]
    version = VERSION_COMMENT.match(aws_version)
    assert version
    assert int(version["major"]) >= 6


def test_the_pin_check_catches_a_tag_or_a_missing_comment(tmp_path: Path) -> None:
    text = (WORKFLOWS / "test.yml").read_text()
    sha, comment = "de0fac2e4500dabe0009e67214ff5f5447ce83dd", " # v6.0.2"
    assert f"actions/checkout@{sha}{comment}" in text
    check_pins(WORKFLOWS / "test.yml")
    for broken in (
        text.replace(f"{sha}{comment}", "v6.0.2"),  # a tag
        text.replace(f"{sha}{comment}", f"{sha.upper()}{comment}"),  # not lowercase hex
        text.replace(sha, sha[:12]),  # a short SHA
        text.replace(comment, ""),  # no comment
        text.replace(comment, " # v6"),  # a moving major version
        text.replace(  # a flow mapping, which the line check must not miss
            f"- uses: actions/checkout@{sha}{comment}\n        with:\n"
            "          persist-credentials: false\n",
            "- {uses: actions/checkout@v6, with: {persist-credentials: false}}\n",
        ),
    ):
        (tmp_path / "test.yml").write_text(broken)
        with pytest.raises(AssertionError):
            check_pins(tmp_path / "test.yml")


# --- zizmor, the workflow security linter -----------------------------------------------------


def zizmor(*inputs: Path, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    # The same flags as `make zizmor`: offline, the repository's config, bad inputs are errors.
    cmd = [str(ZIZMOR), "--offline", "--strict-collection", "--config", str(GITHUB / "zizmor.yml")]
    return subprocess.run(
        [*cmd, *map(str, inputs)], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_zizmor_reports_nothing_on_the_workflows_and_dependabot() -> None:
    proc = zizmor(GITHUB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout
    for name in ("dependabot.yml", *(f"workflows/{f.name}" for f in FILES)):
        assert f"completed {GITHUB / name}" in proc.stderr  # every file was audited


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        (
            "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2",
            "actions/checkout@v6.0.2",
            "unpinned-uses",
        ),
        ("        with:\n          persist-credentials: false\n", "", "artipacked"),
    ],
)
def test_zizmor_catches_a_regression(old: str, new: str, rule: str, tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "test.yml"
    broken.parent.mkdir(parents=True)
    text = (WORKFLOWS / "test.yml").read_text()
    assert old in text
    broken.write_text(text.replace(old, new))
    proc = zizmor(broken, cwd=tmp_path)
    assert proc.returncode != 0
    assert f"[{rule}]" in proc.stdout


def test_zizmor_audits_dependabot_cooldowns(tmp_path: Path) -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    for update in config["updates"]:
        del update["cooldown"]
    broken = tmp_path / ".github" / "dependabot.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(yaml.safe_dump(config))
    proc = zizmor(broken, cwd=tmp_path)
    assert proc.returncode != 0
    assert "[dependabot-cooldown]" in proc.stdout


# --- Dependabot -------------------------------------------------------------------------------


def requirements_directories() -> set[str]:
    """Where the repository keeps requirements*.txt files, as Dependabot directories."""
    found = set()
    for root, dirs, files in os.walk(PROJECT_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in {"venv", "build"}]
        if any(f.startswith("requirements") and f.endswith(".txt") for f in files):
            relative = Path(root).relative_to(PROJECT_ROOT).as_posix()
            found.add("/" if relative == "." else f"/{relative}")
    return found


def test_dependabot_config_is_valid() -> None:
    cmd = [*CHECK_JSONSCHEMA, "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dependabot_updates_actions_requirements_and_the_gateway_image() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    assert config["version"] == 2
    dirs: dict[str, set[str]] = {}
    for update in config["updates"]:
        assert update["cooldown"]["default-days"] >= 7  # new releases wait a week
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
        assert "insecure-external-code-execution" not in update
        found = update.get("directories") or [update["directory"]]
        dirs.setdefault(update["package-ecosystem"], set()).update(found)
    assert dirs["github-actions"] == {"/"}
    assert dirs["docker"] == {"/gateway"}
    assert (PROJECT_ROOT / "gateway" / "Dockerfile").is_file()
    # Every directory with a pinned requirements file, and nothing that has none.
    assert {"/", "/policy", "/gateway"} <= dirs["pip"]
    assert dirs["pip"] == requirements_directories()


# --- what each workflow does ------------------------------------------------------------------


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
    assert stacks["dev"]["env"]["PULUMI_CONFIG_PASSPHRASE"] == DEV_PASSPHRASE  # throwaway state
    assert "environment" not in stacks["dev"]  # no secrets, no credentials
    assert "vars.PULUMI_BACKEND_URL" in stacks["eks"]["env"]["PULUMI_BACKEND_URL"]
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in stacks["eks"]["env"]["PULUMI_CONFIG_PASSPHRASE"]


def test_the_eks_preview_uses_only_its_own_role_and_environment() -> None:
    text = (WORKFLOWS / "preview.yml").read_text()
    assert "AWS_ROLE_ARN" not in text  # the deploy role, not even as a fallback
    workflow = jobs(load("preview.yml"))
    job = workflow["eks"]
    assert job["environment"] == {"name": "eks-preview"}
    (assume,) = steps_using(job, AWS_CREDENTIALS)
    assert assume["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    (check,) = [s for s in workflow["eks-config"]["steps"] if s.get("id") == "check"]
    assert check["env"]["ROLE_ARN"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"


@pytest.mark.parametrize(("where", "environment"), EKS_JOBS.items(), ids=str)
def test_each_eks_job_runs_in_its_environment(where: tuple[str, str], environment: str) -> None:
    name, job_id = where
    job = jobs(load(name))[job_id]
    assert job["environment"] == {"name": environment}
    assert pulumi_step(job)["stack-name"] == "eks"
    assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    role = steps_using(job, AWS_CREDENTIALS)[0]["with"]["role-to-assume"]
    assert role == (
        "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
        if environment == "eks-preview"
        else "${{ vars.AWS_ROLE_ARN }}"
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_and_credentials_only_inside_an_environment(path: Path) -> None:
    for job_id, job in jobs(load(path.name)).items():
        uses_secrets = "secrets." in yaml.safe_dump(job)
        if uses_secrets or steps_using(job, AWS_CREDENTIALS):
            assert (path.name, job_id) in EKS_JOBS, f"{path.name}:{job_id}"
            assert "environment" in job, f"{path.name}:{job_id}"


def test_eks_jobs_are_skipped_unless_configured() -> None:
    for name, job_id in (("preview.yml", "eks"), ("deploy.yml", "deploy")):
        job = jobs(load(name))[job_id]
        assert job["needs"] == "eks-config"
        assert job["if"] == "needs.eks-config.outputs.enabled == 'true'"


def test_one_queue_per_stack_for_everything_touching_eks() -> None:
    for name, job_id in EKS_JOBS:
        concurrency = jobs(load(name))[job_id]["concurrency"]
        where = (name, job_id)
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
    assert job["steps"][-1]["run"] == "venv/bin/python -m tools.smoke --stack eks --timeout 600"


def test_destroy_is_manual_and_confirmed() -> None:
    workflow = load("destroy.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    confirm = workflow["on"]["workflow_dispatch"]["inputs"]["confirm"]
    assert confirm["required"] is True
    job = jobs(workflow)["destroy"]
    assert job["needs"] == "check"
    assert job["environment"]["name"] == "eks"
    assert (pulumi_step(job)["command"], pulumi_step(job)["stack-name"]) == ("destroy", "eks")

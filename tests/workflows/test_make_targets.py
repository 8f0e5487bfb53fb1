"""The same checks on a laptop: Makefile targets printed with `make -n` (nothing runs)."""

import subprocess
from pathlib import Path

import pytest

from config.paths import PROJECT_ROOT


def make_n(*args: str) -> str:
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("target", ["preview", "up"])
def test_make_preview_and_up_run_the_policy_pack(target: str) -> None:
    out = make_n(target, "STACK=dev", "-W", "policy/requirements.txt")
    assert "policy/venv/bin/pip install --quiet --disable-pip-version-check -r " in out
    (command,) = [line for line in out.splitlines() if f"pulumi {target} --stack dev" in line]
    assert command.endswith("--policy-pack policy")


def test_make_test_runs_zizmor_offline() -> None:
    out = make_n("test")
    (command,) = [line for line in out.splitlines() if "/zizmor " in line]
    assert command.split()[1:] == [
        "--offline",
        "--strict-collection",
        "--config",
        ".github/zizmor.yml",
        ".github",
    ]
    assert "zizmor==1.32.0" in (PROJECT_ROOT / "requirements-dev.txt").read_text().splitlines()


@pytest.mark.parametrize(
    ("stack", "skipped"), [("dev", "CKV_K8S_40,CKV_K8S_43,CKV_K8S_15"), ("eks", "CKV_K8S_40")]
)
def test_make_scan_runs_checkov_offline_in_its_own_venv(
    stack: str, skipped: str, tmp_path: Path
) -> None:
    out = make_n("scan", f"STACK={stack}", "-W", "tools/scan/requirements.txt")
    assert "build/checkov-venv/bin/pip install" in out
    assert "-r tools/scan/requirements.txt" in out
    assert "checkov==3.3.30" in (PROJECT_ROOT / "tools/scan/requirements.txt").read_text()
    assert f"--stack {stack} --out build/{stack}" in out  # scans a fresh render
    # Run the printed shell for real with a stand-in checkov that prints its arguments.
    script = out[out.index("skip=") :]
    fake = tmp_path / "build" / "checkov-venv" / "bin" / "checkov"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(
        (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text()
    )
    proc = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    assert proc.stdout.split() == [
        "--file",
        f"build/{stack}/kubernetes.yaml",
        "--framework",
        "kubernetes",
        "--skip-download",
        "--quiet",
        "--compact",
        "--skip-check",
        skipped,
    ]

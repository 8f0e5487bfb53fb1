"""The Makefile: what it acts on comes from the stack file, set-up is split and quick, local
clusters are made as the stacks need them, and the eks passphrase is never the public one.

Recipes are printed with `make -n` or run against stand-in tools on PATH: nothing is installed,
no cluster is touched.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from config.stack import parse
from tests.conftest import PROJECT_ROOT, STACK_FILES
from tools.render.engine import stack_config

MAKEFILE = PROJECT_ROOT / "Makefile"
MAKE = shutil.which("make") or "make"
# What the Makefile's own shell lines need besides the tools it checks for.
BASICS = ["sh", "sed", "head", "tr", "grep", "cat", "echo", "env", "printf", "mkdir", "test"]


def _run(
    args: tuple[str, ...], cwd: Path, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAKE, "-s", "--no-print-directory", "-f", str(MAKEFILE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def make(*args: str, cwd: Path = PROJECT_ROOT, env: dict[str, str] | None = None) -> str:
    proc = _run(args, cwd, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def make_fails(*args: str, cwd: Path, env: dict[str, str]) -> str:
    proc = _run(args, cwd, env)
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


def bin_dir(tmp_path: Path, *fakes: str, script: str = "") -> Path:
    """A PATH directory with the basics and stand-ins for `fakes` (each logs its arguments)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in BASICS:
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    for fake in fakes:
        path = bindir / fake
        path.write_text(f'#!/bin/sh\necho "{fake} $*" >> {tmp_path}/calls\n{script}\n')
        path.chmod(0o755)
    return bindir


def clean_env(path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "MAKE"))}
    return {**keep, "PATH": str(path), **extra}


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.stem.split(".", 1)[1])
def test_the_target_comes_from_the_stack_file_not_its_name(stack_file: Path) -> None:
    stack = stack_file.stem.split(".", 1)[1]
    expected = parse(stack_config(stack_file)).target
    assert make("print-target", f"STACK={stack}").strip() == expected


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ('  tfserving:target: "eks" # quoted, with a comment', "eks"),
        ("  tfserving:target: 'kind'", "kind"),
        ("  tfserving:namespace: tfserving", "minikube"),  # the program's default
    ],
)
def test_target_detection_reads_yaml_as_written(tmp_path: Path, line: str, target: str) -> None:
    (tmp_path / "Pulumi.mine.yaml").write_text(f"config:\n{line}\n")
    assert make("print-target", "STACK=mine", cwd=tmp_path).strip() == target


def test_up_on_an_eks_stack_named_otherwise_never_uses_minikube() -> None:
    for stack in ("eks", "eks-gpu"):
        out = make("-n", "up", f"STACK={stack}")
        assert "docker-env" not in out and "minikube" not in out, stack
        assert "docker buildx version" in out
        assert f"pulumi up --stack {stack} --yes --policy-pack policy" in out
    dev = make("-n", "up", "STACK=dev")
    assert "eval $(minikube -p minikube docker-env) && pulumi up --stack dev" in dev


def test_up_on_kind_builds_loads_then_deploys() -> None:
    out = make("-n", "up", "STACK=kind")
    assert "-m tools.kind images --stack kind --targets" in out
    assert 'kind load docker-image --name "$cluster" $tags' in out
    assert "docker-env" not in out
    assert out.rstrip().endswith("pulumi up --stack kind --yes --policy-pack policy")


def test_dev_installs_only_what_deploying_needs() -> None:
    # -W (as if both files had changed) does not reach sub-makes: check what `dev` runs itself
    # and the `up` and `smoke` it calls.
    changed = ["-W", "requirements.txt", "-W", "requirements-dev.txt"]
    for stack in ("dev", "kind"):
        dev = make("-n", "dev", f"STACK={stack}", *changed)
        assert "requirements-dev.txt" not in dev
        assert f"make up STACK={stack}" in dev and f"make smoke STACK={stack}" in dev
        for step in ("up", "smoke"):
            out = make("-n", step, f"STACK={stack}", *changed)
            assert "pip install --python venv/bin/python -r requirements.txt" in out, step
            assert "requirements-dev.txt" not in out, step
    test = make("-n", "test", "-W", "requirements-dev.txt")
    assert "pip install --python venv/bin/python -r requirements-dev.txt" in test
    render = make("-n", "render", "-W", "requirements.txt")
    assert "-r requirements-dev.txt" not in render and "-r requirements.txt" in render


def test_uv_is_pinned_and_bootstrapped_with_pip() -> None:
    out = make("-n", "render", "-W", "requirements.txt")
    assert "--target build/uv-0.13.9/site-packages uv==0.13.9" in out
    assert "build/uv-0.13.9/site-packages/bin/uv pip install" in out
    assert "uv.lock" not in MAKEFILE.read_text()
    assert not list(PROJECT_ROOT.glob("uv.lock"))


def test_uv_gets_pips_index_mirrors_and_local_wheels(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url = file:///srv/a/simple file:///srv/b/simple\n"
        "find-links = /srv/wheels /srv/more\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "MAKE"))}
    env |= {"PIP_CONFIG_FILE": str(config), "PIP_INDEX_URL": "https://env.example/simple"}
    out = make("--eval", "uvenv: ; @$(UV_ENV); env | grep -E '^UV_' | sort", "uvenv", env=env)
    found = dict(line.split("=", 1) for line in out.splitlines())
    assert found["UV_INDEX_URL"] == "https://env.example/simple"  # the environment wins, as in pip
    assert found["UV_EXTRA_INDEX_URL"] == "file:///srv/a/simple file:///srv/b/simple"
    assert found["UV_FIND_LINKS"] == "/srv/wheels,/srv/more"
    assert found["UV_INDEX_STRATEGY"] == "unsafe-best-match"


@pytest.mark.parametrize(
    ("stack", "missing"),
    [
        ("dev", ["pulumi", "kubectl", "minikube"]),
        ("kind", ["pulumi", "kubectl", "kind", "docker"]),
        ("eks-gpu", ["pulumi", "kubectl", "aws", "docker"]),
    ],
)
def test_every_missing_tool_is_listed_at_once(
    tmp_path: Path, stack: str, missing: list[str]
) -> None:
    out = make_fails(
        "tools-up", f"STACK={stack}", cwd=PROJECT_ROOT, env=clean_env(bin_dir(tmp_path))
    )
    listed = [line.split(":")[0].strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == missing
    assert "needs tools that are not installed" in out
    if stack == "dev":
        assert "2 CPUs, 4 GB" in out


def test_minikube_is_created_with_calico_only_when_new(tmp_path: Path) -> None:
    # status fails (no cluster), profile list knows none: a new cluster, with Calico.
    script = 'case "$*" in *status*) exit 7 ;; *"profile list"*) echo \'{"valid":[]}\' ;; esac'
    path = bin_dir(tmp_path, "minikube", "pulumi", "kubectl", script=script)
    out = make("minikube", "STACK=dev", env=clean_env(path))
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "minikube -p minikube start --cpus=2 --memory=4096 --cni=calico" in calls
    assert "minikube -p minikube addons enable metrics-server" in calls
    assert "--cni=calico (Calico enforces the stack's NetworkPolicies)" in out
    # An existing, stopped profile keeps what it was made with.
    (tmp_path / "calls").unlink()
    listed = json.dumps(
        {"valid": [{"Name": "minikube", "Status": "Stopped"}]}, separators=(",", ":")
    )
    script = f'case "$*" in *status*) exit 7 ;; *"profile list"*) echo \'{listed}\' ;; esac'
    path = bin_dir(tmp_path / "again", "minikube", "pulumi", "kubectl", script=script)
    out = make("minikube", "STACK=dev", env=clean_env(path))
    calls = (tmp_path / "again" / "calls").read_text().splitlines()
    assert "minikube -p minikube start" in calls
    assert not [c for c in calls if "--cni" in c]
    assert "NetworkPolicies are enforced only if that was --cni=calico" in out


@pytest.mark.parametrize(
    ("passphrase", "ok"),
    [(None, False), ("", False), ("tfserving-dev-only", False), ("correct horse battery", True)],
    ids=["unset", "empty", "dev", "own"],
)
def test_an_eks_stack_needs_a_passphrase_of_its_own(
    tmp_path: Path, passphrase: str | None, ok: bool
) -> None:
    env = clean_env(Path(os.environ["PATH"]))
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    if ok:
        make("passphrase", "STACK=eks-gpu", env=env)
        return
    out = make_fails("passphrase", "STACK=eks-gpu", cwd=PROJECT_ROOT, env=env)
    assert "stack eks-gpu is on eks: set PULUMI_CONFIG_PASSPHRASE" in out
    assert "correct horse" not in out


def test_the_dev_passphrase_is_the_default_for_local_stacks_only() -> None:
    env = clean_env(Path(os.environ["PATH"]))
    show = ["--eval", 'show: ; @echo "[$${PULUMI_CONFIG_PASSPHRASE:-}]"', "show"]
    assert make(*show, "STACK=dev", env=env).strip() == "[tfserving-dev-only]"
    assert make(*show, "STACK=kind", env=env).strip() == "[tfserving-dev-only]"
    assert make(*show, "STACK=eks", env=env).strip() == "[]"
    make("passphrase", "STACK=dev", env=env)  # nothing to check on a local stack


def test_ci_runs_the_whole_suite_from_the_projects_files() -> None:
    script = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "make test" in script
    out = make("-n", "test", "-W", "requirements-dev.txt")
    for step in ("ruff check .", "ruff format --check .", "mypy .", "pytest", "zizmor --offline"):
        assert step in out, step


def test_kind_up_builds_the_images_loads_their_tags_then_deploys(tmp_path: Path) -> None:
    # The printed recipe, run with stand-ins: tools.kind answers as for a stack with one image.
    urn = "urn:pulumi:kind::tfserving::tfserving:index:ContainerImage$docker-build:index:Image::gw"
    script = make(
        "-n", "-o", "venv/bin/.deploy-installed", "-o", "policy/venv/.installed", "up",
        "STACK=kind",
    )  # fmt: skip
    (tmp_path / "targets").write_text(f"--target '{urn}'\n")  # as tools.kind quotes it
    answers = tmp_path / "venv" / "bin" / "python"
    answers.parent.mkdir(parents=True)
    answers.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *--targets*) cat {tmp_path}/targets ;;\n"
        '  *" images "*) echo "gw:0123abcd" ;;\n'
        '  *" cluster "*) echo "course" ;;\n'
        "esac\n"
    )
    answers.chmod(0o755)
    path = bin_dir(tmp_path, "pulumi", "kind", "kubectl", "docker")
    proc = subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=tmp_path,
        env=clean_env(path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    ups = [c for c in calls if c.startswith("pulumi up")]
    assert ups == [
        f"pulumi up --stack kind --yes --policy-pack policy --target {urn}",  # $ not expanded
        "pulumi up --stack kind --yes --policy-pack policy",
    ]
    load = "kind load docker-image --name course gw:0123abcd"
    assert calls.index(load) == calls.index(ups[0]) + 1 < calls.index(ups[1])


def test_kind_cluster_is_created_from_the_shipped_config_unless_it_exists(tmp_path: Path) -> None:
    path = bin_dir(tmp_path, "kind", "pulumi", "kubectl", "docker")
    env = clean_env(path)
    # tools.kind runs in the project's venv (-o: without installing into it).
    out = make("-o", "venv/bin/.deploy-installed", "kind-cluster", "STACK=kind", env=env)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "kind create cluster --config tools/kind/cluster.yaml --name tfserving" in calls
    assert "kindnet enforces NetworkPolicies" in out

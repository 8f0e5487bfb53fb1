"""Every command in the README runs as written, in a fresh shell, or says why it cannot here.

Commands are the lines of the README's shell blocks and the inline code that reads as a command
(`make …`, `venv/bin/…`, or a CLI such as `pulumi …`), placeholders aside (`STACK=…`, `<name>`,
`a|b` choices). Each one is either run offline in a copy of the project and must exit 0, or is
skipped with its reason: listed below by name (`make` and `venv/bin/` commands), or by the tool it
needs (a cluster, a cloud, the Pulumi CLI). A command that is neither fails the test, so a new
command in the README is never silently untested.
"""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
PLOT = (
    "venv/bin/python -m tools.autoscale --plot docs/autoscale-demo.csv --png "
    'build/autoscale-demo.png --title "HPA under step load: dev stack (minikube), 1..3 replicas '
    'at 20% CPU (simulated run)"'
)
# Run offline in a copy of the project; each must exit 0 (and leave what the check names).
RUN: dict[str, str] = {
    "make validate STACK=dev": "build/dev/kubernetes.yaml",
    "make zizmor": "",
    PLOT: "build/autoscale-demo.png",
    "venv/bin/python -m tools.smoke --help": "",
    "venv/bin/python -m tools.loadtest.run --help": "",
    "venv/bin/python -m tools.bench.gateway --help": "",
    "venv/bin/python -m tools.mutate --help": "",
    "venv/bin/python -m tools.models.signature models/half_plus_two/1": "",
}
NEEDS_CLUSTER = "needs the pulumi CLI and a running local cluster (minikube or kind)"
# `make` and `venv/bin/` commands that cannot run here, each with its reason.
SKIP: dict[str, str] = {
    "make dev": NEEDS_CLUSTER,
    "make dev STACK=kind": "needs kind, Docker and the pulumi CLI",
    "make dev STACK=gateway": NEEDS_CLUSTER + " and Docker",
    "make test": "the suite this test is part of",
    "make test PYTEST_FLAGS=": "the suite this test is part of",
    "make render": "what make validate STACK=dev (run here) does first",
    "make validate": "the same as make validate STACK=dev, which runs",
    "make preview": "needs the pulumi CLI and the stack's cluster or cloud",
    "make up": "needs the pulumi CLI and the stack's cluster or cloud",
    "make up STACK=kind": "needs kind, Docker and the pulumi CLI",
    "make up STACK=eks": "needs AWS credentials and the pulumi CLI",
    "make smoke STACK=eks": "needs a deployed eks stack",
    "make destroy STACK=eks": "needs a deployed eks stack",
    "make smoke STACK=dev": "needs a deployed stack",
    "make smoke SMOKE_FLAGS=--port-forward": "needs a deployed stack and kubectl",
    "make loadtest STACK=dev DURATION=60s": "needs a deployed stack (a minute of load)",
    "make autoscale-demo STACK=dev": "needs a deployed stack (12 minutes of load)",
    "make bench": "a benchmark of minutes; tools/bench --help runs here",
    "make mutate": "an hour of mutation runs; tools/mutate --help runs here",
    'make mutate AREAS="config gateway"': "an hour of mutation runs; tools/mutate --help runs here",
    "venv/bin/python -m tools.loadtest.run --stack gateway --user gateway --steps 10:1m,40:2m": (
        "needs a deployed gateway stack"
    ),
}
# Other tools a command may need, and why that keeps it from running here.
TOOLS: dict[str, str] = {
    "pulumi": "the Pulumi CLI and a stack's state",
    "kubectl": "a cluster",
    "curl": "a deployed endpoint",
    "aws": "AWS credentials",
    "gh": "GitHub credentials",
    "minikube": "minikube",
    "kind": "kind and Docker",
    "docker": "Docker",
    "UPDATE_URN_FIXTURES=1": "rewrites test fixtures",
}
# Harmless and offline: run when they appear (`openssl rand` prints a new passphrase).
RUN_ALWAYS = {"export", "openssl"}
FIRST_WORDS = ("make", "venv/bin/", "python", "pip", "pytest", *TOOLS, *RUN_ALWAYS)
PLACEHOLDERS = ("…", "...", "<", ">", "DIR", "FILE")


def _strip_comment(line: str) -> str:
    """`make dev  # text` -> `make dev`; a `#` inside quotes stays."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def block_commands(text: str) -> Iterator[str]:
    """The command lines of every ```sh block (continuations joined, comments dropped)."""
    for block in re.findall(r"^[ \t]*```(?:sh|bash|shell)\n(.*?)^[ \t]*```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            command = _strip_comment(line.strip())
            if command:
                yield command


def inline_commands(text: str) -> Iterator[str]:
    """Inline code that reads as a command, with no placeholder in it."""
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`([^`]+)`", prose):
        command = " ".join(span.split())
        if (
            " " in command
            and command.startswith(FIRST_WORDS)
            and not any(p in command for p in PLACEHOLDERS)
            and not _is_choice(command)
        ):
            yield command


def _is_choice(command: str) -> bool:
    """`STACK=dev|eks` or `--user gateway|both`: a `|` that is a list of choices, not a pipe."""
    return bool(re.search(r"[\w=]\|\w", command))


def readme_commands() -> list[str]:
    text = README.read_text()
    return list(dict.fromkeys([*block_commands(text), *inline_commands(text)]))


def _tool_reason(command: str) -> str | None:
    words = re.findall(r"(?:^|[\s(\"$])([A-Za-z_][\w./=-]*)", command)
    needed = [TOOLS[w] for w in words if w in TOOLS]
    return f"needs {', '.join(dict.fromkeys(needed))}" if needed else None


def classify(command: str) -> tuple[str, str]:
    """("run", check) or ("skip", reason) or ("unclassified", why)."""
    if command in RUN:
        return "run", RUN[command]
    if command in SKIP:
        return "skip", SKIP[command]
    first = command.split(maxsplit=1)[0]
    if first in ("python", "python3", "pip", "pytest"):
        return "unclassified", "needs an activated venv: write venv/bin/" + first
    if first == "make" or first.startswith("venv/bin/"):
        return "unclassified", "a make/venv command: add it to RUN (offline) or SKIP (why not)"
    reason = _tool_reason(command)
    if reason:
        return "skip", reason
    if first in RUN_ALWAYS:
        return "run", ""
    return "unclassified", "add it to RUN or SKIP, or name the tool it needs in TOOLS"


def test_every_readme_command_is_run_or_skipped_with_a_reason() -> None:
    commands = readme_commands()
    assert len(commands) >= 15, "the README's commands were not found"
    unclassified = {c: why for c in commands if (kind := classify(c))[0] == "unclassified"
                    for why in [kind[1]]}  # fmt: skip
    assert unclassified == {}


def test_the_tables_hold_no_command_the_readme_dropped() -> None:
    commands = set(readme_commands())
    assert sorted(set(RUN) - commands) == []
    assert sorted(set(SKIP) - commands) == []


def test_no_choice_is_written_as_a_pipe() -> None:
    # `--user gateway|both` in a shell block would pipe into a command named `both`.
    for command in block_commands(README.read_text()):
        for part in re.split(r"\|(?!\|)", command)[1:]:
            assert part.split()[0] in {"grep", "jq", "head", "tail", "sort", "tee"}, command


def test_the_skips_say_why() -> None:
    for command in readme_commands():
        kind, reason = classify(command)
        if kind == "skip":
            assert reason.strip(), command


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (without venvs, build output or state) using this test's venv."""
    root = tmp_path_factory.mktemp("readme") / "tfserving"
    ignored = shutil.ignore_patterns(
        "venv", "build", ".git", ".pulumi-state", "__pycache__", "*_cache", ".tools"
    )
    shutil.copytree(PROJECT_ROOT, root, ignore=ignored)
    real, venv = Path(sys.prefix), root / "venv"
    (venv / "bin").mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name != "bin":
            (venv / entry.name).symlink_to(entry)
    for entry in (real / "bin").iterdir():
        if not entry.name.startswith("."):
            (venv / "bin" / entry.name).symlink_to(entry)
    # The venv is installed (this test runs in it): make must not install into it again.
    for stamp in (".deploy-installed", ".dev-installed"):
        (venv / "bin" / stamp).touch()
    return root


def fresh_shell_env() -> dict[str, str]:
    """The environment of a new terminal: no activated venv, no Pulumi or make settings."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PULUMI_", "MAKE", "PYTEST", "VIRTUAL_ENV"))
    }
    return {**env, "PATH": os.pathsep.join(path), "MPLBACKEND": "Agg"}


def runnable() -> list[str]:
    return [c for c in readme_commands() if classify(c)[0] == "run"]


@pytest.mark.parametrize("command", runnable(), ids=lambda c: c.split(" --title")[0][:60])
def test_offline_commands_run_as_written(sandbox: Path, command: str) -> None:
    committed = (sandbox / "docs" / "autoscale-demo.png").read_bytes()
    proc = subprocess.run(
        ["sh", "-c", command],
        cwd=sandbox,
        env=fresh_shell_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    if RUN.get(command):
        assert (sandbox / RUN[command]).is_file(), RUN[command]
    assert "Installing" not in proc.stderr + proc.stdout, "make reinstalled the venv"
    # No command overwrites the committed picture (plots go to build/).
    assert (sandbox / "docs" / "autoscale-demo.png").read_bytes() == committed

"""Render a stack offline: run the real program under Pulumi's mock runtime, write what it declares.

    python -m tools.render --stack dev --out build/dev
    python -m tools.render --stack-file path/to/Pulumi.mine.yaml --out build/mine

Writes `kubernetes.yaml` (every Kubernetes object, applyable with `kubectl apply -f`),
`resources.json` (every resource: type, name, parent, provider, dependencies, inputs) and
`outputs.json` (the stack outputs). No Pulumi CLI, credentials or cluster needed.

What a provider would compute is mocked (tools/render/cloud.py: account 123456789012, image
digests, load-balancer host names, cluster endpoints): `outputs.json` says so in its `_mock` key,
and the smoke test, load test and autoscaling demo refuse such a file.

Exit codes: 0 rendered, 2 invalid stack config (the error on stderr, nothing written).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from tools.render.cli import BAD_STACK, add_stack_arguments, read_stack
from tools.render.engine import Rendered, render_stack
from tools.stack_outputs import MOCK_KEY

MOCK_NOTE = (
    "mock values: written by the offline render (python -m tools.render), which asks no cloud "
    "or cluster; account 123456789012, image digests, load-balancer host names and cluster "
    "endpoints are made up. A deployed stack's outputs: pulumi stack output --json"
)


def outputs_file(outputs: dict[str, object]) -> dict[str, object]:
    """The stack outputs as outputs.json holds them: still one JSON object of outputs, plus the
    `_mock` note (no stack output can start with `_`: outputs.py names them all)."""
    return {MOCK_KEY: MOCK_NOTE, **outputs}


def write(rendered: Rendered, out: Path) -> None:
    """Write all three files, or none: each goes to a temporary file first."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "kubernetes.yaml": yaml.safe_dump_all(rendered.kubernetes_objects, sort_keys=False),
        "resources.json": json.dumps(rendered.resources, indent=2, default=str) + "\n",
        "outputs.json": json.dumps(
            outputs_file(rendered.outputs), indent=2, sort_keys=True, default=str
        )
        + "\n",
    }
    # Temporary files are private (0600); the results get the usual mode for new files.
    umask = os.umask(0)
    os.umask(umask)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as tmp:
                staged.append((Path(tmp.name), out / name))
                tmp.write(text)
            os.chmod(tmp.name, 0o666 & ~umask)
    except BaseException:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        raise
    for tmp_path, final in staged:
        tmp_path.replace(final)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.render", description=__doc__.split("\n\n")[0]
    )
    add_stack_arguments(parser, "renders")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    rendered = read_stack(args, render_stack)
    if rendered is None:
        return BAD_STACK
    write(rendered, args.out)
    print(
        f"rendered stack {rendered.stack}: {len(rendered.kubernetes_objects)} Kubernetes objects, "
        f"{len(rendered.resources)} resources -> {args.out} (outputs.json: mock values)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `make dev|up STACK=<kind stack>` needs to know about a kind stack, read offline.

    python -m tools.kind cluster --stack kind          # the kind cluster's name (clusterName)
    python -m tools.kind images --stack kind           # the image tags the stack builds
    python -m tools.kind images --stack kind --targets # `--target URN` flags to build only those

`make up` on a kind stack builds the images first (`pulumi up --target` the flags above), loads
the tags onto the node with `kind load docker-image --name <cluster>`, then runs the whole
`pulumi up` (targets/kind.py says why). URNs and tags come from the offline render of the same
program, so they are the ones `pulumi up` uses: the image tag is a hash of the build's inputs.

Exit codes: 0, 2 for a stack that is not valid or not on target kind.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from config.errors import SettingsError
from config.settings import KindSettings
from config.stack import parse
from tools.render.cli import BAD_STACK, add_stack_arguments, read_stack
from tools.render.engine import render_stack, stack_config

IMAGE_TYPE = "docker-build:index:Image"


@dataclass(frozen=True)
class Image:
    urn: str
    parent: str | None  # the ContainerImage component, which must be targeted with it
    tags: tuple[str, ...]


def kind_settings(stack_file: Path) -> KindSettings:
    settings = parse(stack_config(stack_file))
    if not isinstance(settings, KindSettings):
        raise SettingsError([f"{stack_file.name} is on target {settings.target}, not kind"])
    return settings


def images(stack_file: Path) -> list[Image]:
    """The images the stack builds, from its offline render."""
    kind_settings(stack_file)
    return [
        Image(r["urn"], r["parent"], tuple(r["inputs"].get("tags") or ()))
        for r in render_stack(stack_file).resources
        if r["type"] == IMAGE_TYPE
    ]


def target_flags(found: list[Image]) -> list[str]:
    """`pulumi up` flags that update only the images (and the components that own them)."""
    urns = dict.fromkeys(u for i in found for u in (i.parent, i.urn) if u)
    return [flag for urn in urns for flag in ("--target", urn)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.kind", description=__doc__.split("\n")[0]
    )
    parser.add_argument("what", choices=["cluster", "images"])
    add_stack_arguments(parser, "reads")
    parser.add_argument("--targets", action="store_true", help="images: print --target flags")
    args = parser.parse_args(argv)
    if args.what == "cluster":
        settings = read_stack(args, kind_settings)
        if settings is None:
            return BAD_STACK
        print(settings.cluster_name)
        return 0
    found = read_stack(args, images)
    if found is None:
        return BAD_STACK
    if args.targets:
        print(" ".join(f"'{flag}'" if flag != "--target" else flag for flag in target_flags(found)))
    else:
        for image in found:
            print(*image.tags)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the tools that read one stack file share: `--stack NAME | --stack-file PATH`, and bad
files or config reported on stderr with exit code 2 (never a traceback)."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from config.errors import SettingsError
from config.paths import PROJECT_ROOT

T = TypeVar("T")
BAD_STACK = 2  # the exit code for a missing stack file or bad config


def add_stack_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help=f"stack name: {verb} Pulumi.<stack>.yaml")
    which.add_argument("--stack-file", type=Path, help="path to a Pulumi.<stack>.yaml")


def read_stack(args: argparse.Namespace, read: Callable[[Path], T]) -> T | None:
    """`read(stack file)`, or None once the reason it failed is on stderr."""
    stack_file: Path = args.stack_file or PROJECT_ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"error: stack file {stack_file} does not exist", file=sys.stderr)
        return None
    try:
        return read(stack_file)
    except SettingsError as error:
        print(f"error: invalid stack config in {stack_file}:\n{error}", file=sys.stderr)
    except yaml.YAMLError as error:
        print(f"error: {stack_file} is not valid YAML: {error}", file=sys.stderr)
    return None

"""How a bad setting is reported: one line per problem, each naming its full key path.

Validators raise `InvalidSettingError` (a ValueError) to name a key other than the one they
validate, e.g. a model validator of `tfserving:autoscaling` blaming `maxReplicas`. `describe` turns
pydantic's errors into `tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1`.
"""

import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel

NAMESPACE = "tfserving"


class SettingsError(pulumi.RunError):
    """Invalid stack configuration; each line names the offending key.

    A RunError, so `pulumi up` prints the message alone, without a Python traceback.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InvalidSettingError(ValueError):
    """A problem with the key at `at` (dotted, relative to the model that raises it)."""

    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        # "nodeGroups.1.name" -> ("nodeGroups", 1, "name"): list positions print as [1].
        self.at: tuple[str | int, ...] = tuple(
            int(part) if part.isdigit() else part for part in at.split(".") if part
        )


def key_path(loc: Sequence[str | int]) -> str:
    """`["cluster", "nodeGroups", 0, "minSize"]` -> `tfserving:cluster.nodeGroups[0].minSize`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else ("." if path else "") + part
    return f"{NAMESPACE}:{path}" if path else NAMESPACE


_TYPE_HINTS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping of settings",
    "model_type": "a mapping of settings",
}


def _fix(error_type: str, value: object) -> str:
    """What to write instead, for a value of the wrong type."""
    wanted = _TYPE_HINTS.get(error_type)
    if wanted is None:
        return ""
    if isinstance(value, str) and error_type in ("int_type", "float_type", "bool_type"):
        return f" (write {value} without quotes)" if value.strip() else ""
    return f" (expected {wanted})"


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as a line that names the key, what is wrong and the fix."""
    loc: list[str | int] = [p if isinstance(p, int) else str(p) for p in error["loc"]]
    message = str(error["msg"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidSettingError):
        loc.extend(cause.at)
    if isinstance(cause, ValueError):
        message = str(cause)
    path = key_path(loc)
    kind = error["type"]
    if kind == "value_error":
        return f"{path} {message}"
    if kind == "extra_forbidden":
        return f"{path} is not a known setting{_suggestion(loc)}"
    if kind == "missing":
        return f"{path} is required"
    fix = _fix(kind, error.get("input"))
    return f"{path}: {message[:1].lower()}{message[1:]}, got {error.get('input')!r}{fix}"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The settings models an annotation holds (through Optional, Annotated, list and dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def known_keys(loc: Sequence[str | int]) -> list[str]:
    """The setting names at `loc`'s parent (e.g. ["autoscaling", "maxReplica"] -> the keys of
    tfserving:autoscaling), over every target's settings; empty when the path is not a model's."""
    from config.settings import TARGETS  # noqa: PLC0415 - config.settings imports this module

    models: list[type[BaseModel]] = list(TARGETS.values())
    for part in loc[:-1]:
        if isinstance(part, int):  # a list position: the same models
            continue
        models = [
            found
            for model in models
            for name, field in model.model_fields.items()
            if (field.alias or name) == part
            for found in _models(field.annotation)
        ]
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def _suggestion(loc: Sequence[str | int]) -> str:
    """The closest known key for a misspelt one ("; did you mean X?"), else those known there."""
    keys = known_keys(loc)
    if not keys or not loc or not isinstance(loc[-1], str):
        return " (check the spelling)"
    match = difflib.get_close_matches(loc[-1], keys, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {match[0]}?"
    return f" (known here: {', '.join(keys)})"

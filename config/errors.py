"""How a bad setting is reported: one line per problem, each naming its full key path.

Validators raise `InvalidSettingError` (a ValueError) to name a key other than the one they
validate, e.g. a model validator of `tfserving:autoscaling` blaming `maxReplicas`. `describe` turns
pydantic's errors into `tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

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
        return f"{path} is not a known setting (check the spelling)"
    if kind == "missing":
        return f"{path} is required"
    fix = _fix(kind, error.get("input"))
    return f"{path}: {message[:1].lower()}{message[1:]}, got {error.get('input')!r}{fix}"

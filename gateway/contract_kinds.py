"""Kinds of settings for the gateway's contract (`gateway.contract`): whole numbers, seconds,
booleans, choices and names, each a `Var` that parses environment text, checks a value and
writes it back. Standard library only, like the contract itself, which re-exports `Var` and
`ContractError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

PREFIX = "GATEWAY_"
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


class ContractError(ValueError):
    """A value the gateway would refuse. `field` names the Var when a rule spans several."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Var(Generic[T]):
    """One setting: the gateway's field name, its variable, default, parser, check and writer."""

    field: str
    env: str
    default: T
    parse: Callable[[str], T]
    check: Callable[[T], T]
    render: Callable[[T], str] = str

    def from_env(self, text: str) -> T:
        return self.check(self.parse(text))

    def to_env(self, value: T) -> str:
        return self.render(self.check(value))


def not_bool(value: object, kind: str) -> None:
    if isinstance(value, bool):
        raise ContractError(f"must be {kind}, not a boolean ({value!r})")


def parse_int(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise ContractError(f"must be a whole number, got {text!r}")
    return int(text.strip())


def integer(
    field: str,
    default: int,
    low: int,
    high: int,
    *,
    unit: str = "",
    env: str | None = None,
    floor: int | None = None,
) -> Var[int]:
    """A whole number in low..high; with `floor`, `low` (0: "automatic") or floor..high."""
    suffix = f" {unit}" if unit else ""

    def check(value: int) -> int:
        not_bool(value, "a whole number")
        if not isinstance(value, int):
            raise ContractError(f"must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise ContractError(f"must be between {low} and {high}{suffix}, got {value}")
        if floor is not None and low < value < floor:
            raise ContractError(
                f"must be {low} (automatic) or between {floor} and {high}{suffix}, got {value}"
            )
        return value

    return Var(field, env or PREFIX + field.upper(), default, parse_int, check)


def seconds(field: str, default: float, high: float, *, zero: bool = False) -> Var[float]:
    """Seconds as a finite number: more than 0 (or at least 0 with zero=True), at most `high`."""
    low = "at least 0" if zero else "more than 0"

    def parse(text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            raise ContractError(f"must be a number of seconds, got {text!r}") from None

    def check(value: float) -> float:
        not_bool(value, "a number of seconds")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError(f"must be a finite number of seconds, got {value!r}")
        if not ((value >= 0) if zero else (value > 0)) or value > high:
            raise ContractError(f"must be {low} and at most {high:g} seconds, got {value!r}")
        return value

    return Var(field, PREFIX + field.upper(), default, parse, check, _render_number)


def _render_number(value: float) -> str:
    return str(int(value)) if isinstance(value, int) else repr(float(value))


def boolean(field: str, default: bool) -> Var[bool]:
    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ContractError(f"must be true or false, got {text!r}")

    def check(value: bool) -> bool:
        if not isinstance(value, bool):
            raise ContractError(f"must be true or false, got {value!r}")
        return value

    return Var(field, PREFIX + field.upper(), default, parse, check, lambda v: str(v).lower())


def choice(field: str, options: type[E], default: E, aliases: Mapping[str, str] = {}) -> Var[E]:
    values = [member.value for member in options]
    named = ", ".join(values) + (f" (aliases: {', '.join(aliases)})" if aliases else "")

    def parse(text: str) -> E:
        word = text.strip()
        word = aliases.get(word.lower(), word)
        for member in options:
            if member.value.lower() == word.lower():
                return member
        raise ContractError(f"must be one of {named}, got {text!r}")

    def check(value: E) -> E:
        if isinstance(value, options):
            return value
        if isinstance(value, str) and value in values:  # a plain string of a canonical value
            return options(value)
        raise ContractError(f"must be one of {named}, got {value!r}")

    return Var(field, PREFIX + field.upper(), default, parse, check, lambda v: v.value)


def name(
    field: str, default: str, pattern: re.Pattern[str] | None = None, what: str = ""
) -> Var[str]:
    """A non-empty name without surrounding whitespace or control characters."""

    def check(value: str) -> str:
        if not isinstance(value, str) or not value:
            raise ContractError(f"must be a non-empty string, got {value!r}")
        if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ContractError(
                f"must not hold spaces at the ends or control characters, got {value!r}"
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise ContractError(f"must be {what}, got {value!r}")
        return value

    return Var(field, PREFIX + field.upper(), default, lambda text: text, check)

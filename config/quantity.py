"""Kubernetes resource quantities ("500m", "1.5", "256Mi", "1G"), parsed exactly.

Settings validation needs to compare requests with limits and derive TF Serving thread counts from
the CPU limit before anything reaches the API server, so quantities are parsed here with the same
grammar the API server accepts (decimal and binary SI suffixes, plain and exponent forms).
"""

import re
from dataclasses import dataclass
from decimal import Decimal

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the quantity in base units (cores, bytes); raise ValueError naming the bad input."""
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"is not a Kubernetes quantity (like 500m, 1, 256Mi, 1Gi): {value!r}")
    suffix = match.group("suffix") or ""
    number = Decimal(match.group("number"))  # the regex admits only what Decimal reads
    if suffix in _SUFFIXES:  # first: "E" and "Ei" are exa, not an exponent
        return number * _SUFFIXES[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))  # e3, E-2, e+6


@dataclass(frozen=True)
class Quantity:
    """A quantity as written in the stack (what the manifest carries) and its exact amount."""

    text: str
    amount: Decimal

    def __str__(self) -> str:
        return self.text


def quantity(value: object) -> Quantity:
    """Stack config value (YAML `1`, `0.5` or `"250m"`) -> Quantity; ValueError naming the input."""
    if isinstance(value, Quantity):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"is not a Kubernetes quantity (like 500m, 1, 256Mi, 1Gi): {value!r}")
    return Quantity(str(value), parse_quantity(value))

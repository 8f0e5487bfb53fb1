"""Kubernetes quantities parse to their exact amount in base units, as the API server reads them."""

from decimal import Decimal

import pytest

from config.quantity import Quantity, parse_quantity, quantity


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("2", Decimal(2)),
        (" 1.5 ", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("+3", Decimal(3)),
        ("500m", Decimal("0.5")),
        ("250u", Decimal("0.00025")),
        ("7n", Decimal("7e-9")),
        ("2k", Decimal(2000)),
        ("3M", Decimal(3_000_000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("2Ki", Decimal(2048)),
        ("256Mi", Decimal(256 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1e3", Decimal(1000)),
        ("5E2", Decimal(500)),
        ("1e-3", Decimal("0.001")),
        ("2e+2", Decimal(200)),
    ],
)
def test_every_suffix_and_exponent_form(text, amount):
    assert parse_quantity(text) == amount


# Once read as an exponent with no digits (int('') / int('i')): a crash, not an error message.
@pytest.mark.parametrize(
    ("text", "amount"),
    [("1E", Decimal(10**18)), ("1Ei", Decimal(2**60)), ("2E3", Decimal(2000)), ("1e", None)],
)
def test_the_exa_suffixes(text, amount):
    if amount is None:
        with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
            parse_quantity(text)
    else:
        assert parse_quantity(text) == amount


def test_numbers_parse_as_their_text():
    assert parse_quantity(4) == Decimal(4)
    assert parse_quantity(0.25) == Decimal("0.25")


@pytest.mark.parametrize("text", ["", "m", "1mi", "1 Gi", "1.2.3", "1KiB", "0x10", "None"])
def test_anything_else_is_not_a_quantity(text):
    with pytest.raises(ValueError) as caught:
        parse_quantity(text)
    assert str(caught.value) == (
        f"is not a Kubernetes quantity (like 500m, 1, 256Mi, 1Gi): {text!r}"
    )


def test_a_quantity_keeps_the_text_the_stack_gave():
    parsed = quantity("250m")
    assert parsed == Quantity("250m", Decimal("0.25"))
    assert str(parsed) == "250m"
    assert quantity(1) == Quantity("1", Decimal(1))
    assert quantity(0.5) == Quantity("0.5", Decimal("0.5"))
    assert quantity(parsed) is parsed


@pytest.mark.parametrize("value", [True, None, [1], {"cpu": 1}])
def test_only_text_and_numbers_are_quantities(value):
    with pytest.raises(ValueError) as caught:
        quantity(value)
    assert str(caught.value) == (
        f"is not a Kubernetes quantity (like 500m, 1, 256Mi, 1Gi): {value!r}"
    )

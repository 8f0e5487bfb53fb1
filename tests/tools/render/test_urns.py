"""Resource identities: a deployed stack's next `pulumi up` must replace nothing by accident.

Each committed stack's render is held against a fixture of its sorted URNs and each resource's
parent (the URN carries only the parent's own type; the parent links pin the whole ancestry).
A type token, logical name or parent that changes fails here. After a deliberate change, write
the new fixture with `UPDATE_URN_FIXTURES=1 venv/bin/pytest tests/tools/render/test_urns.py`
and say in the commit why every changed URN is meant to change (and how deployed stacks move:
an alias, or a replacement that is acceptable).
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from config.paths import PROJECT_ROOT
from tools.render import render_stack

FIXTURES = Path(__file__).parent / "urns"
STACKS = sorted(p.stem for p in FIXTURES.glob("*.json"))


def identities(stack: str) -> dict[str, Any]:
    rendered = render_stack(PROJECT_ROOT / f"Pulumi.{stack}.yaml")
    resources = sorted(rendered.resources, key=lambda r: r["urn"])
    return {
        "urns": [r["urn"] for r in resources],
        "parents": {r["urn"]: r["parent"] for r in resources},
    }


def test_every_committed_stack_has_a_fixture():
    committed = sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_ROOT.glob("Pulumi.*.yaml")
    )
    assert committed and committed == STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_urns_and_parents_are_unchanged(stack):
    fixture = FIXTURES / f"{stack}.json"
    current = identities(stack)
    if os.environ.get("UPDATE_URN_FIXTURES") == "1":
        fixture.write_text(json.dumps(current, indent=2) + "\n")
    expected = json.loads(fixture.read_text())
    assert current["urns"], "a render without resources proves nothing"
    added = sorted(set(current["urns"]) - set(expected["urns"]))
    removed = sorted(set(expected["urns"]) - set(current["urns"]))
    assert (added, removed) == ([], []), f"URNs changed for stack {stack}"
    assert current["parents"] == expected["parents"]

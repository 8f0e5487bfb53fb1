"""pytest plugin for mutation runs: the selected test modules, quickest first.

mutmut runs the tests that reach a mutated function with `-x`: the first failure kills the
mutant. It hands them over in no particular order, so a mutant a unit test kills in
milliseconds would often wait for a minute of renders first. Modules are ordered by the time
their tests took in mutmut's own timing run (their order within a module is kept, so a module's
fixtures are set up once); the verdict is the same in any order, only sooner.
"""

from collections import defaultdict
from typing import Any


def pytest_collection_modifyitems(items: list[Any]) -> None:
    try:
        from mutmut.state import state  # noqa: PLC0415 - only inside a mutmut run
    except ImportError:
        return
    durations = state().duration_by_test
    if not durations:
        return
    per_module: defaultdict[str, float] = defaultdict(float)
    for item in items:
        per_module[_module(item)] += durations.get(item.nodeid, 0.0)
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (per_module[_module(item)], _module(item), order[id(item)]))


def _module(item: Any) -> str:
    return str(item.nodeid.split("::", 1)[0])

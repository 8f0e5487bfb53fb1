"""tools/mutate without running mutmut: each area's copy and settings, results, the score."""

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest

from tools.mutate import __main__ as mutate
from tools.mutate import fast_first, report


def test_the_areas_are_the_program_folders_and_the_gateways_core():
    assert list(mutate.AREAS) == ["config", "targets", "components", "gateway"]
    for name, area in mutate.AREAS.items():
        assert area.source == name
        assert (mutate.PROJECT_ROOT / area.source / "__init__.py").is_file()
        paths = [t for t in area.tests if not t.startswith("-")]
        assert paths == [f"tests/{name}"]
        assert (mutate.PROJECT_ROOT / paths[0]).is_dir()
        for option in set(area.tests) - set(paths):
            ignored = option.removeprefix("--ignore=")
            assert ignored != option and (mutate.PROJECT_ROOT / ignored).is_file(), option
    assert [a.only for a in mutate.AREAS.values()][:3] == [(), (), ()], "program folders: whole"
    core = mutate.AREAS["gateway"].only
    assert core == mutate.GATEWAY_CORE and len(core) == 12
    assert all((mutate.PROJECT_ROOT / path).is_file() for path in core)
    # What decides what gets in is mutated; the wiring is not.
    assert {"gateway/netguard.py", "gateway/auth.py", "gateway/body.py"} < set(core)
    assert not {"gateway/app.py", "gateway/server.py", "gateway/__main__.py"} & set(core)


def test_the_gateway_areas_settings_mutate_only_its_core(tmp_path: Path):
    mutate.write_settings(tmp_path, mutate.AREAS["gateway"])
    mutmut = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert mutmut["source_paths"] == ["gateway"]
    assert mutmut["only_mutate"] == list(mutate.GATEWAY_CORE)
    assert mutmut["pytest_add_cli_args_test_selection"] == list(mutate.AREAS["gateway"].tests)
    assert mutmut["process_isolation"] == "forkserver", "gRPC's threads do not survive a fork"
    assert mutmut["forkserver_warmup"] == "import"
    preloaded = Path(mutmut["preload_modules_file"]).read_text().split()
    assert preloaded == list(mutate.AREAS["gateway"].preload) and "grpc" in preloaded
    # The gateway's own modules are imported by each mutant's run, never ahead of it.
    assert not [m for m in preloaded if m.split(".")[0] in {"gateway", "tests", "config"}]


def test_an_areas_copy_holds_the_checkout_and_settings_aimed_at_it(tmp_path: Path):
    mutate.sync_checkout(mutate.PROJECT_ROOT, tmp_path)
    stale = tmp_path / "config" / "stale.py"
    stale.write_text("")
    (tmp_path / "mutants").mkdir()
    (tmp_path / "mutants" / "kept.txt").write_text("mutmut's own")
    mutate.sync_checkout(mutate.PROJECT_ROOT, tmp_path)
    assert not stale.exists(), "a file gone from the checkout goes from the copy"
    assert (tmp_path / "mutants" / "kept.txt").exists(), "mutmut's results stay"
    assert (tmp_path / "config" / "stack.py").read_bytes() == (
        mutate.PROJECT_ROOT / "config" / "stack.py"
    ).read_bytes()
    assert not (tmp_path / "venv").exists() and not (tmp_path / "build").exists()

    mutate.write_settings(tmp_path, mutate.AREAS["targets"])
    settings = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    mutmut = settings["tool"]["mutmut"]
    assert mutmut["source_paths"] == ["targets"]
    assert "only_mutate" not in mutmut and "process_isolation" not in mutmut
    assert mutmut["pytest_add_cli_args_test_selection"] == ["tests/targets"]
    assert mutmut["pytest_add_cli_args"][-2:] == ["-p", "tools.mutate.fast_first"]
    assert {"config", "components", "gateway", "tools", "models", "Pulumi.yaml"} <= set(
        mutmut["also_copy"]
    )
    assert not {"targets", "tests", "pyproject.toml"} & set(mutmut["also_copy"])
    original = tomllib.loads((mutate.PROJECT_ROOT / "pyproject.toml").read_text())["tool"]
    assert settings["tool"]["pytest"] == original["pytest"], "the rest is the checkout's own"
    assert mutmut["use_git_change_detection"] is False


def _meta(directory: Path, path: str, codes: Mapping[str, int | None]) -> None:
    meta = directory / "mutants" / (path + ".meta")
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "durations_by_key": {}}))


def test_results_per_module_and_the_score_without_justified_survivors(tmp_path: Path):
    _meta(
        tmp_path, "config/base.py", {"config.base.x_a__mutmut_1": 1, "config.base.x_a__mutmut_2": 0}
    )
    _meta(
        tmp_path,
        "config/errors.py",
        {"config.errors.x_b__mutmut_1": 36, "config.errors.x_b__mutmut_2": 33},
    )
    summaries = report.summarise("config", "config", tmp_path)
    assert [(s.module, [m.status for m in s.mutants]) for s in summaries] == [
        ("config.base", ["killed", "survived"]),
        ("config.errors", ["timeout", "no tests"]),
    ]
    assert report.score(summaries, set()) == 50.0
    assert report.score(summaries, {"config.base.x_a__mutmut_2"}) == pytest.approx(200 / 3)


def test_a_rerun_tries_the_survivors_again_and_keeps_the_kills(tmp_path: Path):
    codes = {
        "config.base.x_a__mutmut_1": 1,
        "config.base.x_a__mutmut_2": 0,
        "config.base.x_a__mutmut_3": 36,
    }
    _meta(tmp_path, "config/base.py", codes)
    mutate.retest_survivors(tmp_path, mutate.AREAS["config"])
    meta = json.loads((tmp_path / "mutants" / "config" / "base.py.meta").read_text())
    assert meta["exit_code_by_key"] == {
        "config.base.x_a__mutmut_1": 1,
        "config.base.x_a__mutmut_2": None,
        "config.base.x_a__mutmut_3": None,
    }
    assert meta["durations_by_key"] == {}


def test_equivalent_mutants_are_the_names_listed_in_items():
    names = report.equivalent_mutants()
    assert names, "EQUIVALENT.md lists mutants"
    areas = tuple(f"{area}." for area in mutate.AREAS)
    assert all(name.startswith(areas) for name in names), "only the mutated areas"


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_quickest_test_modules_first_keeping_their_own_order(monkeypatch: pytest.MonkeyPatch):
    from mutmut.state import state  # noqa: PLC0415

    monkeypatch.setattr(
        state(),
        "duration_by_test",
        {"slow.py::a": 5.0, "slow.py::b": 1.0, "fast.py::a": 0.1, "fast.py::b": 0.2},
    )
    items = [
        _Item(n) for n in ("slow.py::a", "fast.py::b", "slow.py::b", "new.py::x", "fast.py::a")
    ]
    fast_first.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        "new.py::x",
        "fast.py::b",
        "fast.py::a",
        "slow.py::a",
        "slow.py::b",
    ]

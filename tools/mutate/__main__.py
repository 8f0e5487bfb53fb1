"""Mutation testing of what decides what gets deployed (`config/`, `components/`, `targets/`)
and of what the gateway lets through (its core modules, GATEWAY_CORE below).

    python -m tools.mutate                      # every area, then the table and the survivors
    python -m tools.mutate config targets       # some areas
    python -m tools.mutate --report             # the table of the last runs, nothing run
    python -m tools.mutate --fresh components   # forget cached results first

mutmut (pinned in tools/mutate/requirements.txt) changes one thing at a time in the area's
functions (a `<` into `<=`, a string into another, an argument into None, ...) and runs the tests
that reach the changed function: a mutant is killed when one of them fails. Each area runs in a
copy of the checkout, `build/mutate/<area>/`, with its own test selection (AREAS below) and the
`[tool.mutmut]` settings of pyproject.toml, so nothing is written into the working tree and
areas can be re-run alone; mutmut keeps its results there and re-tests only what changed.

Slow and not for CI: about an hour and a half on one core for all four areas. The script lowers
its own priority (nice 19), runs one mutant at a time (--jobs for more), and writes mutmut's
output to `build/mutate/<area>/mutmut.log`, so it can run in the background (`nohup ... &`).
Survivors that cannot change behaviour are listed, with the reason, in tools/mutate/EQUIVALENT.md;
the table counts them apart. Exit status 1 when an area's score is below --min-score.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tools.mutate.report import (
    KILLED,
    duration,
    equivalent_mutants,
    of_area,
    print_survivors,
    print_table,
    score,
    summarise,
    timings_of,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
PLUGIN = "tools.mutate.fast_first"
# Never copied into an area: caches, virtualenvs, other runs' output.
SKIPPED_TOP_LEVEL = {".git", "venv", ".venv", "build", "mutants", ".hypothesis", ".mypy_cache",
                     ".ruff_cache", ".pytest_cache", ".pulumi-state"}  # fmt: skip


@dataclass(frozen=True)
class Area:
    """A folder to mutate (all of it, or only the files named) and the tests that judge it."""

    source: str
    tests: tuple[str, ...]
    only: tuple[str, ...] = ()
    # Fork each mutant's test run from a server process that has imported only these (third-party)
    # modules, not from mutmut's own, which ran the whole selection: gRPC's threads do not survive
    # fork() (mutmut's documentation), and the area's own modules must be imported anew by each
    # mutant's run, since the gateway builds its contract (Var objects) at import time.
    preload: tuple[str, ...] = ()


# The gateway's decisions: its environment contract and settings, which clients and requests get
# in (keys, bodies, downloads, addresses), what an image becomes, where a request goes, how much
# memory a request may hold. Not mutated: the wiring (app, server, metrics, protocol glue).
GATEWAY_CORE = tuple(
    f"gateway/{name}.py"
    for name in (
        "contract",
        "contract_kinds",
        "contract_keys",
        "settings",
        "auth",
        "body",
        "download",
        "netguard",
        "imaging",
        "pixels",
        "memory",
        "canary",
    )
)

# What the gateway's tests import from outside the repository: loaded once, before any mutant.
GATEWAY_PRELOAD = ("pytest", "pytest_asyncio", "hypothesis", "yaml", "numpy", "PIL.Image",
                   "simplejpeg", "grpc", "grpc.aio", "google.protobuf", "aiohttp", "aiohttp.web",
                   "prometheus_client", "pulumi", "pulumi_kubernetes")  # fmt: skip

# Tests of the area itself, plus the fast unit tests of the areas it feeds. Each mutant runs only
# the selected tests that reach its function (mutmut's coverage), so a broad selection costs time
# on survivors only.
AREAS: dict[str, Area] = {
    "config": Area("config", ("tests/config",)),
    "targets": Area("targets", ("tests/targets",)),
    "components": Area("components", ("tests/components",)),
    "gateway": Area(
        "gateway",
        # The benchmarks' own tests and the peak-memory run measure, they do not judge behaviour.
        (
            "tests/gateway",
            "--ignore=tests/gateway/test_perf_bench.py",
            "--ignore=tests/gateway/test_peak_memory.py",
        ),
        only=GATEWAY_CORE,
        preload=GATEWAY_PRELOAD,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "areas", nargs="*", metavar="AREA", help=f"{', '.join(AREAS)} (default: all, in this order)"
    )
    parser.add_argument("--report", action="store_true", help="print the last results, run nothing")
    parser.add_argument("--fresh", action="store_true", help="discard an area's cached results")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="mutants tested at once (default 1)"
    )
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "build" / "mutate")
    parser.add_argument(
        "--min-score",
        type=float,
        default=90.0,
        metavar="PERCENT",
        help="exit 1 when an area kills less (equivalent mutants aside); default 90",
    )
    args = parser.parse_args(argv)
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area {unknown[0]!r}: choose from {', '.join(AREAS)}")
    areas = list(dict.fromkeys(args.areas)) or list(AREAS)
    _lower_priority()
    timings: dict[str, float] = {}
    if not args.report:
        for area in areas:
            code, seconds = run_area(
                area, args.workdir / area, fresh=args.fresh, jobs=max(1, args.jobs)
            )
            timings[area] = seconds
            if code != 0:
                log = args.workdir / area / "mutmut.log"
                print(
                    f"mutmut failed for {area} (exit {code}); last lines of {log}:", file=sys.stderr
                )
                print("\n".join(_tail(log, 30)), file=sys.stderr)
                return 2
    summaries = [
        s for area in areas for s in summarise(area, AREAS[area].source, args.workdir / area)
    ]
    if not summaries:
        print(f"no results under {args.workdir}: run python -m tools.mutate first", file=sys.stderr)
        return 2
    equivalent = equivalent_mutants()
    print_table(summaries, equivalent, timings_of(args.workdir, areas, timings))
    print_survivors(summaries, equivalent, args.workdir)
    low = [a for a in areas if score(of_area(summaries, a), equivalent) < args.min_score]
    if low:
        print(f"below {args.min_score:g}%: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


def _lower_priority() -> None:
    # Safe beside benchmarks and interactive work: whoever starts it, it yields the CPU.
    with suppress(OSError):
        os.nice(19 - os.nice(0))


# --- one area ---------------------------------------------------------------------------------


def run_area(area: str, directory: Path, *, fresh: bool, jobs: int = 1) -> tuple[int, float]:
    """Refresh the area's copy of the checkout, then `mutmut run` in it, `jobs` mutants at once."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sync_checkout(PROJECT_ROOT, directory)
    write_settings(directory, AREAS[area])
    # mutmut copies tests/ over its own copy: remove it, so a deleted test does not linger.
    shutil.rmtree(directory / "mutants" / "tests", ignore_errors=True)
    retest_survivors(directory, AREAS[area])
    # mutmut re-learns which tests reach which function only for tests with new names: forget it,
    # so a changed test is matched to what it now reaches (one run of the selection, kept kills).
    (directory / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut if mutmut.exists() else "mutmut"), "run", "--max-children", str(jobs)]
    print(f"mutate {area}: {' '.join(command)} in {directory} (log: mutmut.log)", flush=True)
    start = time.monotonic()
    with (
        (directory / "mutmut.log").open("wb") as log,
        _process_group(command, directory, log) as proc,
    ):
        code = proc.wait()
    seconds = time.monotonic() - start
    (directory / "last-run.json").write_text(json.dumps({"seconds": round(seconds), "exit": code}))
    print(f"mutate {area}: done in {duration(seconds)} (exit {code})", flush=True)
    return code, seconds


@contextmanager
def _process_group(
    command: list[str], cwd: Path, log: IO[bytes]
) -> Iterator[subprocess.Popen[bytes]]:
    # mutmut forks a worker per mutant: stop the whole group if this script is stopped.
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop(signum: int, _frame: object) -> None:
        _kill_group(proc)
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield proc
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def retest_survivors(directory: Path, area: Area) -> None:
    """Forget every verdict but a kill, so this run tries the survivors on the current tests.

    mutmut itself re-tests a function's mutants only when the function changes; a kill stands
    until then (start with --fresh after weakening or deleting tests)."""
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415 - only with mutmut installed

    for meta in (directory / "mutants" / area.source).rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        kept = {k: v if status_by_exit_code[v] in KILLED else None for k, v in codes.items()}
        if kept != codes:
            meta.write_text(json.dumps({**data, "exit_code_by_key": kept}))


def checkout_files(root: Path) -> list[Path]:
    """The checkout's files as git sees them (tracked and new, not ignored), else every file."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode()  # fmt: skip
        candidates = [Path(p) for p in listed.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        candidates = [p.relative_to(root) for p in root.rglob("*")]
    return sorted(
        p
        for p in candidates
        if p.parts[0] not in SKIPPED_TOP_LEVEL
        and "__pycache__" not in p.parts
        and (root / p).is_file()
    )


def sync_checkout(root: Path, directory: Path) -> None:
    """Make `directory` hold exactly the checkout's files; unchanged files keep their times
    (mutmut regenerates the mutants of a file whose time changed)."""
    wanted = set(checkout_files(root))
    for relative in wanted:
        source, target = root / relative, directory / relative
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for existing in directory.rglob("*"):
        relative = existing.relative_to(directory)
        top = relative.parts[0]
        if top in {"mutants", "mutmut.log", "last-run.json", *SKIPPED_TOP_LEVEL}:
            continue
        if existing.is_file() and relative not in wanted and relative != Path("pyproject.toml"):
            existing.unlink()


def write_settings(directory: Path, area: Area) -> None:
    """The checkout's pyproject.toml with `[tool.mutmut]` aimed at one area and its tests."""
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    settings = dict(tomllib.loads(text).get("tool", {}).get("mutmut", {}))
    tops = {p.parts[0] for p in checkout_files(PROJECT_ROOT)}
    settings["source_paths"] = [area.source]
    if area.only:
        settings["only_mutate"] = list(area.only)
    if area.preload:
        (directory / "preload-modules.txt").write_text("\n".join(area.preload) + "\n")
        settings["process_isolation"] = "forkserver"
        settings["forkserver_warmup"] = "import"
        settings["preload_modules_file"] = str((directory / "preload-modules.txt").resolve())
    settings["pytest_add_cli_args_test_selection"] = list(area.tests)
    # Quickest test modules first: a mutant dies at its first failing test.
    settings["pytest_add_cli_args"] = [*settings.get("pytest_add_cli_args", []), "-p", PLUGIN]
    # Everything else the tests read (the program, stack files, models, fixtures, tools).
    settings["also_copy"] = sorted(tops - {area.source, "tests", "pyproject.toml"})
    section = "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    without = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    (directory / "pyproject.toml").write_text(without.rstrip("\n") + "\n\n" + section)


def _tail(path: Path, lines: int) -> list[str]:
    if not path.is_file():
        return []
    # The progress spinner rewrites its line with carriage returns: keep each line's last state.
    text = path.read_text(errors="replace").replace("\r\n", "\n")
    return [line.rsplit("\r", 1)[-1] for line in text.splitlines()][-lines:]


if __name__ == "__main__":
    sys.exit(main())

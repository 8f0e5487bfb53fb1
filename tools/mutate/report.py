"""The results of mutation runs: per-module counts, the score, and the survivors' changes."""

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

EQUIVALENT_FILE = Path(__file__).resolve().parent / "EQUIVALENT.md"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    status: str


@dataclass(frozen=True)
class Summary:
    area: str
    module: str
    mutants: tuple[Mutant, ...]

    def count(self, *statuses: str) -> int:
        return sum(1 for m in self.mutants if m.status in statuses)


KILLED = ("killed", "caught by type check")
TIMEOUT = ("timeout",)


def summarise(area: str, source: str, directory: Path) -> list[Summary]:
    """One summary per mutated module, from mutmut's result files (`mutants/<path>.meta`)."""
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415 - only with mutmut installed

    found = []
    for meta in sorted((directory / "mutants" / source).rglob("*.py.meta")):
        path = meta.relative_to(directory / "mutants").as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        mutants = tuple(Mutant(k, path, status_by_exit_code[v]) for k, v in sorted(codes.items()))
        if mutants:
            found.append(Summary(area, path.removesuffix(".py").replace("/", "."), mutants))
    return found


def equivalent_mutants() -> set[str]:
    """The mutant names EQUIVALENT.md justifies (in backticks, in its list items)."""
    if not EQUIVALENT_FILE.is_file():
        return set()
    items = [line for line in EQUIVALENT_FILE.read_text().splitlines() if line.startswith("- ")]
    return {name for line in items for name in re.findall(r"`([^`\s]+__mutmut_\d+)`", line)}


def of_area(summaries: list[Summary], area: str) -> list[Summary]:
    return [s for s in summaries if s.area == area]


def score(summaries: list[Summary], equivalent: set[str]) -> float:
    """Killed (and timed out) out of what was generated, the justified equivalents aside."""
    mutants = [m for s in summaries for m in s.mutants]
    counted = [m for m in mutants if not (m.status == "survived" and m.name in equivalent)]
    killed = sum(1 for m in counted if m.status in KILLED + TIMEOUT)
    return 100.0 * killed / len(counted) if counted else 100.0


def print_table(summaries: list[Summary], equivalent: set[str], timings: dict[str, float]) -> None:
    header = ("module", "generated", "killed", "survived", "equivalent", "timeout", "other",
              "kill %", "excl. equiv.")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for area in dict.fromkeys(s.area for s in summaries):
        group = of_area(summaries, area)
        for s in [*group, None]:
            items = group if s is None else [s]
            mutants = [m for x in items for m in x.mutants]
            statuses = Counter(m.status for m in mutants)
            equiv = sum(1 for m in mutants if m.status == "survived" and m.name in equivalent)
            killed = sum(statuses[k] for k in KILLED)
            other = len(mutants) - killed - statuses["survived"] - statuses["timeout"]
            raw = 100.0 * (killed + statuses["timeout"]) / len(mutants)
            took = f" ({duration(timings[area])})" if s is None and area in timings else ""
            rows.append((
                f"{area} total{took}" if s is None else s.module, str(len(mutants)), str(killed),
                str(statuses["survived"]), str(equiv), str(statuses["timeout"]), str(other),
                f"{raw:.1f}", f"{score(items, equivalent):.1f}",
            ))  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_survivors(summaries: list[Summary], equivalent: set[str], workdir: Path) -> None:
    """Every mutant not killed (equivalent ones marked), each with the change it made."""
    for area in dict.fromkeys(s.area for s in summaries):
        alive = [m for s in of_area(summaries, area) for m in s.mutants if m.status not in KILLED]
        if not alive:
            continue
        print(f"\n{area}: {len(alive)} not killed (= equivalent, see {EQUIVALENT_FILE.name})")
        diffs = _diffs(workdir / area, alive)
        for m in alive:
            mark = "=" if m.name in equivalent else " "
            print(f"{mark} {m.name} [{m.status}]: {diffs.get(m.name, '?')}")


def _diffs(directory: Path, mutants: list[Mutant]) -> dict[str, str]:
    """One line per mutant: the original line(s) -> the mutated line(s)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # noqa: PLC0415

    found = {}
    cwd = Path.cwd()
    os.chdir(directory)  # mutmut reads mutants/<path> relative to the working directory
    try:
        for m in mutants:
            try:
                diff = get_diff_for_mutant(m.name, path=m.path).splitlines()
            except (OSError, ValueError) as error:
                found[m.name] = f"(no diff: {error})"
                continue
            old = " / ".join(ln[1:].strip() for ln in diff if ln[:1] == "-" and ln[:3] != "---")
            new = " / ".join(ln[1:].strip() for ln in diff if ln[:1] == "+" and ln[:3] != "+++")
            line = f"{old}  ->  {new}"
            found[m.name] = line if len(line) <= 200 else line[:197] + "..."
    finally:
        os.chdir(cwd)
    return found


def timings_of(workdir: Path, areas: list[str], measured: dict[str, float]) -> dict[str, float]:
    found = dict(measured)
    for area in areas:
        last = workdir / area / "last-run.json"
        if area not in found and last.is_file():
            found[area] = float(json.loads(last.read_text())["seconds"])
    return found


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"

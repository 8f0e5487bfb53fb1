"""Step load schedules, shared by the Locust shape and the autoscaling demo (no Locust import).

A schedule is written `USERS:DURATION,...`, e.g. `5:30s,20:1m,0:2m`: 5 users for 30 s, then 20
for a minute, then none for two minutes (a cool-down, to watch the HPA scale back in).
"""

import re
from dataclasses import dataclass

DEFAULT_STEPS = "5:20s,20:20s,50:20s"
_DURATION = re.compile(r"^(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


@dataclass(frozen=True)
class Step:
    users: int
    seconds: float


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1m30s` -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"bad duration '{text}' (use e.g. 30s, 2m, 1m30s)")
    return float(match["m"] or 0) * 60 + float(match["s"] or 0)


def parse_steps(text: str) -> list[Step]:
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        users, sep, duration = part.partition(":")
        if not sep or not users.strip().isdigit():
            raise ValueError(f"bad step '{part}' (use USERS:DURATION, e.g. 20:30s)")
        seconds = parse_duration(duration)
        if seconds <= 0:
            raise ValueError(f"step '{part}' must last longer than 0 s")
        steps.append(Step(int(users), seconds))
    if not steps:
        raise ValueError("no steps given (use e.g. 5:30s,20:30s)")
    return steps


def total_seconds(steps: list[Step]) -> float:
    return sum(s.seconds for s in steps)


def step_at(steps: list[Step], elapsed: float) -> tuple[int, Step] | None:
    """(index, step) running `elapsed` seconds into the schedule; None once it is over."""
    end = 0.0
    for i, step in enumerate(steps):
        end += step.seconds
        if elapsed < end:
            return i, step
    return None


def boundaries(steps: list[Step]) -> list[tuple[float, float, Step]]:
    """(start, end, step) per step, seconds from the schedule's start."""
    out, start = [], 0.0
    for step in steps:
        out.append((start, start + step.seconds, step))
        start += step.seconds
    return out

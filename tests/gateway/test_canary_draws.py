"""The canary split, draw by draw: each request draws one number below 1000 and goes to the canary
when it is below the share in tenths of a percent; the tracks and labels each setting gives."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.canary import PER_MILLE, Router, Track
from gateway.settings import load_settings


class Draws(random.Random):
    """Hands out the given draws and records the bound asked for each."""

    def __init__(self, *draws: int) -> None:
        super().__init__(0)
        self.draws = list(draws)
        self.bounds: list[int] = []

    def randrange(self, start: int, *args: Any, **kwargs: Any) -> int:
        self.bounds.append(start)
        return self.draws.pop(0)


def router(draws: Draws, **settings: Any) -> Router:
    return Router(load_settings(environ={}, **settings), draws)


def test_tracks_without_a_canary() -> None:
    plain = router(Draws(), stable_label="prod")
    assert plain.stable == Track("stable", None)
    assert plain.canary is None
    assert (plain.share, plain.tracks, plain.labels) == (0, (Track("stable", None),), ())
    assert plain.pick() == Track("stable", None)


def test_tracks_with_a_canary() -> None:
    split = router(Draws(), canary_label="next", stable_label="prod", canary_percent=12.5)
    assert (split.stable, split.canary) == (Track("stable", "prod"), Track("canary", "next"))
    assert split.tracks == (Track("stable", "prod"), Track("canary", "next"))
    assert (split.share, split.labels) == (125, ("prod", "next"))


def test_an_empty_stable_label_asks_for_the_default_version() -> None:
    split = router(Draws(), canary_label="next", stable_label="", canary_percent=1)
    assert split.stable == Track("stable", None)
    assert (split.share, split.labels) == (10, ("next",))
    assert split.tracks == (Track("stable", None), Track("canary", "next"))


@pytest.mark.parametrize(
    ("percent", "share"), [(0, 0), (0.1, 1), (12.5, 125), (33.3, 333), (99.9, 999), (100, 1000)]
)
def test_the_share_in_tenths_of_a_percent(percent: float, share: int) -> None:
    assert router(Draws(), canary_label="next", canary_percent=percent).share == share


@pytest.mark.parametrize(("draw", "name"), [(0, "canary"), (124, "canary"), (125, "stable"),
                                            (999, "stable")])  # fmt: skip
def test_a_draw_below_the_share_goes_to_the_canary(draw: int, name: str) -> None:
    draws = Draws(draw)
    split = router(draws, canary_label="next", canary_percent=12.5)
    assert split.pick().name == name
    assert draws.bounds == [PER_MILLE] == [1000]


def test_a_tenth_of_a_percent_takes_only_the_lowest_draw() -> None:
    draws = Draws(0, 1, 998, 999)
    split = router(draws, canary_label="next", canary_percent=0.1)
    assert [split.pick().name for _ in range(4)] == ["canary", "stable", "stable", "stable"]
    assert draws.bounds == [1000] * 4


def test_all_but_a_tenth_of_a_percent_leaves_only_the_highest_draw() -> None:
    draws = Draws(0, 998, 999)
    split = router(draws, canary_label="next", canary_percent=99.9)
    assert [split.pick().label for _ in range(3)] == ["next", "next", "stable"]


def test_none_and_all_never_draw() -> None:
    draws = Draws()
    assert router(draws, canary_label="next", canary_percent=0).pick() == Track("stable", "stable")
    assert router(draws, canary_label="next", canary_percent=100).pick() == Track("canary", "next")
    assert draws.bounds == []


def test_without_an_rng_each_router_draws_from_its_own() -> None:
    split = Router(load_settings(environ={}, canary_label="next", canary_percent=50))
    names = {split.pick().name for _ in range(200)}
    assert names == {"stable", "canary"}

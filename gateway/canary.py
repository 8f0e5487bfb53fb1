"""The canary split: which TF Serving version label each prediction asks for.

Without GATEWAY_CANARY_LABEL no label is sent (GATEWAY_MODEL_VERSION, or the latest version).
With one, GATEWAY_CANARY_PERCENT % of the requests (to a tenth of a percent) ask for the canary
label and the others for GATEWAY_STABLE_LABEL (empty: the default version), each request drawn
on its own from a `random.Random` that tests can seed. 0 sends nothing to the canary (rollback),
100 everything (promotion), without drawing at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.settings import Settings

PER_MILLE = 1000


@dataclass(frozen=True)
class Track:
    name: str  # "stable" or "canary": a metrics label
    label: str | None  # the version label asked for; None: no label


class Router:
    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        canary = settings.canary_label
        self.stable = Track("stable", (settings.stable_label or None) if canary else None)
        self.canary = Track("canary", canary) if canary else None
        # Tenths of a percent, exactly: 12.5 % -> 125 of 1000.
        self.share = round(settings.canary_percent * 10) if canary else 0

    @property
    def tracks(self) -> tuple[Track, ...]:
        return (self.stable,) if self.canary is None else (self.stable, self.canary)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every version label a request may ask for."""
        return tuple(track.label for track in self.tracks if track.label is not None)

    def pick(self) -> Track:
        if self.canary is None or self.share <= 0:
            return self.stable
        if self.share >= PER_MILLE:
            return self.canary
        return self.canary if self._rng.randrange(PER_MILLE) < self.share else self.stable

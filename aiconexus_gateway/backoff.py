"""The one jittered exponential backoff: how long to wait before reconnection attempt n. Pure.

Used by the SDK's reconnection to a gateway (`client/reconnect.py`) and by a cluster instance's
reconnection to Redis (`backends/`). Stdlib only, no clock, no randomness of its own: the caller
passes its jitter source (`random.random` in production, a constant in tests).

The scheme is "equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):

    ceiling = min(cap, base * multiplier ** attempt)
    delay   = ceiling / 2 + jitter() * ceiling / 2        jitter() in [0, 1]

Why equal jitter rather than "full jitter" (uniform in [0, ceiling]): full jitter spreads clients
a little wider, but any single wait can be close to zero, so a client whose gateway (or Redis)
just went down may hammer it several times in a row. Equal jitter keeps a floor of half the
ceiling, so every wait grows with the attempt number, while the other half still spreads many
clients apart after a restart (no reconnect storm). A fixed +-20 % spread, which the cluster used
before, keeps clients that failed together within 40 % of one another, attempt after attempt.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def backoff(attempt: int, *, base: float, cap: float, jitter: Callable[[], float],
            multiplier: float = 2.0) -> float:
    """Seconds to wait before attempt `attempt` (0 for the first retry): equal jitter.

    `jitter` returns a number in [0, 1] (e.g. `random.random`); `lambda: 1.0` gives the ceiling
    itself and `lambda: 0.0` its half. ValueError for a negative attempt or a nonsensical
    `base`, `cap`, `multiplier` or jitter value.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    if not (0 < base <= cap and math.isfinite(cap)) or multiplier < 1:
        raise ValueError("need 0 < base <= cap (finite) and multiplier >= 1")
    try:
        ceiling = min(cap, base * float(multiplier) ** attempt)
    except OverflowError:  # far past the cap
        ceiling = cap
    spread = jitter()
    if not 0.0 <= spread <= 1.0:
        raise ValueError(f"the jitter source must return a number in [0, 1], got {spread!r}")
    half = ceiling / 2
    return half + spread * half

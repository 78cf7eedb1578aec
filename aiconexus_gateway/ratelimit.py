"""Rate policy: token buckets, the per-connection frame limit and the per-address work budget.

Pure and stdlib-only (the SDK's pacer imports `TokenBucket` from here), time passed in. Each
check is a few float operations, so they sit on the hot path at no real cost.
"""

from __future__ import annotations

# Seconds of the gateway's handling (CPU time, see connections.TIMED_FRAME) one token pays for. A
# frame that takes longer (a large frame full of floats to canonicalize, ~50 ms at 64 KiB) is
# charged the excess, so a connection cannot buy more than about RATE_LIMIT * COST_UNIT seconds of
# work per second whatever its frames hold. Ordinary frames take 0.02-0.4 ms.
COST_UNIT = 0.002

# A connection that keeps sending after RATE_LIMITED is abusive once more than `burst` of its
# frames were refused within about this many seconds (the refusal count leaks at burst/window per
# second); it is then closed with 4429.
ABUSE_WINDOW = 10.0

# The work budget of one remote address (all its connections together): the gateway spends at
# most WORK_RATE seconds per second of its time (ADDRESS_WORK_LIMIT) on an address's handshakes,
# frames before registration and control frames, after a saved-up WORK_BURST. An honest agent's
# handshake costs about 0.3 ms, so one address may still open well over CONNECTION_RATE agents a
# second; an address that keeps the gateway busier than this is refused new connections (429) and
# its unregistered connections are closed (4429) until its budget has refilled.
WORK_RATE = 0.25  # a quarter of one core per address
WORK_BURST = 2.0  # seconds of work an address may spend at once
WORK_TRACKED = 65536  # addresses remembered at most; the fullest ones are forgotten first


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one token per event."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)  # a new client may burst at once
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one will be available."""
        elapsed = now - self.stamp
        tokens = self.tokens
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.burst:
                tokens = self.burst
            self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class RateLimiter:
    """Per-connection frame limit (RATE_LIMIT / RATE_BURST) plus the abuse rule behind 4429."""

    __slots__ = ("_debt", "_debt_stamp", "_leak", "bucket")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.bucket = TokenBucket(rate, burst, now)
        self._debt = 0.0  # refused frames, leaking away at burst / ABUSE_WINDOW per second
        self._debt_stamp = now
        self._leak = burst / ABUSE_WINDOW

    def take(self, now: float) -> float:
        """0.0 when the frame may go on; else the retry hint in seconds."""
        return self.bucket.take(now)

    def charge(self, seconds: float) -> None:
        """A frame took `seconds` to handle: take the tokens for the time beyond COST_UNIT.

        The balance may go negative; the connection then waits until it has paid.
        """
        extra = seconds / COST_UNIT - 1.0
        if extra > 0:
            self.bucket.tokens -= extra

    def refused(self, now: float) -> bool:
        """Record one refused frame; True when the connection is now abusive (close 4429)."""
        debt = self._debt - (now - self._debt_stamp) * self._leak
        self._debt = (debt if debt > 0 else 0.0) + 1.0
        self._debt_stamp = now
        return self._debt > self.bucket.burst


class WorkBudget:
    """Seconds of gateway work each remote address may cost, refilled at `rate` per second.

    Charged with what unauthenticated work costs (handshakes, frames before registration, control
    frames), measured by the caller; `over(ip, now)` tells whether the address is in debt. A rate
    of 0 is no limit: nothing is ever over budget.
    """

    __slots__ = ("_balances", "burst", "max_tracked", "rate")

    def __init__(self, rate: float = WORK_RATE, burst: float = WORK_BURST,
                 max_tracked: int = WORK_TRACKED) -> None:
        if not rate >= 0 or not burst > 0:
            raise ValueError("a work budget needs rate >= 0 (0: no limit) and burst > 0")
        self.rate = rate
        self.burst = burst
        self.max_tracked = max_tracked
        self._balances: dict[str, tuple[float, float]] = {}  # ip -> (seconds left, stamp)

    def _balance(self, ip: str, now: float) -> float:
        entry = self._balances.get(ip)
        if entry is None:
            return self.burst
        left, stamp = entry
        left += (now - stamp) * self.rate
        return self.burst if left > self.burst else left

    def charge(self, ip: str, seconds: float, now: float) -> bool:
        """Charge `seconds` of work to `ip`; True when the address is now over its budget."""
        if not self.rate:
            return False
        left = self._balance(ip, now) - seconds
        if left >= self.burst:
            self._balances.pop(ip, None)  # full again: nothing to remember
            return False
        balances = self._balances
        if ip not in balances and len(balances) >= self.max_tracked:
            self._forget_fullest(now)
        balances[ip] = (left, now)
        return left < 0

    def over(self, ip: str, now: float) -> bool:
        """True while `ip` owes work (its budget is below zero)."""
        return ip in self._balances and self._balance(ip, now) < 0

    def retry_after(self, ip: str, now: float) -> float:
        """Seconds until `ip` is out of debt (0.0 when it is not in debt)."""
        left = self._balance(ip, now)
        return -left / self.rate if left < 0 else 0.0

    def __len__(self) -> int:
        return len(self._balances)

    def _forget_fullest(self, now: float) -> None:
        """Drop the half of the tracked addresses closest to a full budget (bounded memory)."""
        ranked = sorted(self._balances, key=lambda ip: self._balance(ip, now))
        for ip in ranked[len(ranked) // 2:]:
            del self._balances[ip]

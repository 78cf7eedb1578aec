"""What the monitor says about the gateway: its state, for the status bar and the activity log.

Pure. A `Status` is replaced (never mutated) after each poll; `status_lines` is the status
bar's text, `status_change` the log line for a change of state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .contract import Health
from .formatting import format_duration, format_seconds, shorten_did

STATES = ("connecting", "healthy", "draining", "degraded", "unreachable", "error", "unauthorized")
FAILED_STATES = frozenset({"unreachable", "error", "unauthorized"})
STOPPED_STATES = frozenset({"unauthorized"})
"""Failures that polling again cannot cure: polling stops until the operator presses `r`."""
STATE_ICONS = {"healthy": "●", "draining": "◐", "degraded": "◐", "connecting": "…"}


@dataclass(frozen=True)
class Status:
    """What the status bar says about the gateway.

    `state` is the gateway's own health status ("healthy", "draining", "degraded") after a
    successful poll, "unreachable" when it could not be reached, "error" when it answered
    wrongly (HTTP error, malformed JSON), "unauthorized" when it wants its admin token, and
    "connecting" before the first answer. `health`
    and `last_ok` (local wall time) are from the last successful poll and survive failures.
    """

    url: str
    interval: float
    state: str = "connecting"
    reason: str = ""
    health: Health | None = None
    last_ok: datetime | None = None
    paused: bool = False

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    @property
    def stopped(self) -> bool:
        """Polling waits for the operator (`r`): polling again would fail the same way."""
        return self.state in STOPPED_STATES

    @property
    def stale(self) -> bool:
        """The data on screen is from an earlier poll than the last attempt."""
        return self.failed and self.last_ok is not None


def status_lines(status: Status) -> tuple[str, str]:
    """The two lines of the status bar: the state and URL, then the gateway's identity."""
    icon = "✖" if status.failed else STATE_ICONS.get(status.state, "●")
    state = f"{icon} {status.state}"
    if status.reason:
        state += f": {status.reason}"
    if status.stopped:
        state += " · polling stopped, r retries"
    elif status.failed and not status.paused:
        state += f", retrying every {format_seconds(status.interval)}"
    if status.paused:
        state += " · paused (p resumes)"
    first = f"{state} · {status.url}"

    details: list[str] = []
    if status.health is not None:
        health = status.health
        details.append(f"gateway {health.version}" if health.version else "gateway")
        if health.gateway_did:
            details.append(shorten_did(health.gateway_did))
        details.append(f"up {format_duration(health.uptime_seconds)}")
    if status.last_ok is None:
        details.append("no data yet")
    elif status.stale:
        details.append(f"data from {status.last_ok:%H:%M:%S} (stale)")
    else:
        details.append(f"last poll {status.last_ok:%H:%M:%S}")
    return first, " · ".join(details)


def status_change(old: Status, new: Status) -> str | None:
    """The activity-log line for a change of the gateway's state, or None if nothing changed."""
    if new.failed:
        if (old.state, old.reason) == (new.state, new.reason):
            return None
        return f"gateway {new.state}: {new.reason}" if new.reason else f"gateway {new.state}"
    if new.health is None:
        return None
    health = new.health
    restarted = old.health is not None and (
        health.gateway_did != old.health.gateway_did
        or health.uptime_seconds < old.health.uptime_seconds
    )
    if old.failed or old.state == "connecting":
        verb = "back" if old.health is not None else "reached"
        line = f"gateway {verb}: {new.state}, version {health.version}"
        return line + (", restarted" if restarted else "")
    if restarted:
        return f"gateway restarted: {new.state}, up {format_duration(health.uptime_seconds)}"
    if old.state != new.state:
        return f"gateway {new.state}"
    return None

"""What the status bar and the log say about the gateway's state."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from monitor.status import Status, status_change, status_lines

from .builders import health

URL = "http://127.0.0.1:8000"
LOCAL = datetime(2026, 11, 26, 11, 0, 5)


def test_status_healthy_shows_identity_and_last_poll() -> None:
    status = Status(URL, 1.0, state="healthy", health=health(0), last_ok=LOCAL)
    first, second = status_lines(status)
    assert first == f"● healthy · {URL}"
    assert second == "gateway 0.1.0 · did:key:z6MknGc3…Sdxf · up 1 m 40 s · last poll 11:00:05"


def test_status_unreachable_says_why_and_that_it_retries_and_that_data_is_stale() -> None:
    status = Status(
        URL, 1.0, state="unreachable", reason="connection refused", health=health(0), last_ok=LOCAL
    )
    first, second = status_lines(status)
    assert first == f"✖ unreachable: connection refused, retrying every 1 s · {URL}"
    assert second.endswith("data from 11:00:05 (stale)")
    assert status.stale


def test_status_before_any_data() -> None:
    status = Status(URL, 0.5, state="unreachable", reason="connection refused")
    first, second = status_lines(status)
    assert "retrying every 0.5 s" in first
    assert second == "no data yet"
    assert not status.stale


def test_status_paused_says_how_to_resume() -> None:
    status = Status(URL, 1.0, state="healthy", health=health(0), last_ok=LOCAL, paused=True)
    assert "paused (p resumes)" in status_lines(status)[0]


def test_log_lines_for_gateway_state_changes() -> None:
    connecting = Status(URL, 1.0)
    healthy = replace(connecting, state="healthy", health=health(0), last_ok=LOCAL)
    down = replace(healthy, state="unreachable", reason="connection refused")
    slow = replace(down, reason="no answer within 5 s")
    back = replace(healthy, health=health(30))
    restarted = replace(healthy, health=health(0, uptime_seconds=1.0))
    draining = replace(back, state="draining")

    assert status_change(connecting, healthy) == "gateway reached: healthy, version 0.1.0"
    assert status_change(healthy, down) == "gateway unreachable: connection refused"
    assert status_change(down, down) is None
    assert status_change(down, slow) == "gateway unreachable: no answer within 5 s"
    assert status_change(slow, back) == "gateway back: healthy, version 0.1.0"
    assert status_change(back, restarted) == "gateway restarted: healthy, up 1 s"
    assert status_change(down, restarted) == "gateway back: healthy, version 0.1.0, restarted"
    assert status_change(back, draining) == "gateway draining"
    assert status_change(healthy, back) is None
    assert status_change(connecting, replace(connecting, state="unreachable")) == (
        "gateway unreachable"
    )


def test_unauthorized_says_polling_stopped_and_how_to_retry() -> None:
    status = Status(URL, 1.0, state="unauthorized", reason="the gateway refused the admin token")
    first, _ = status_lines(status)
    assert first == (
        f"✖ unauthorized: the gateway refused the admin token · polling stopped, r retries · {URL}"
    )
    assert status.stopped and status.failed
    assert not replace(status, state="unreachable").stopped

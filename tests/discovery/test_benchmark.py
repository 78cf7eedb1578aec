"""benchmarks/discovery.py runs (small numbers): its scenario stays in step with the code."""

from __future__ import annotations

import sys

import pytest

from benchmarks import discovery


def test_the_discovery_benchmark_runs(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["discovery", "--agents", "200", "--watchers", "20"])
    discovery.main()
    out = capsys.readouterr().out
    assert "200 agents registered" in out
    assert "fan-out to 20 watchers" in out and "(20 PRESENCE sent" in out
    assert "the held leave, when its window ends" in out and "(20 PRESENCE)" in out

"""The machine description, the results tables, the targets and the JSON file."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .scenarios import Options, Result
from .servers import BENCH_LIMITS

ROOT = Path(__file__).resolve().parent.parent


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "-"


def commit() -> str:
    """`git rev-parse --short HEAD`, with '+dirty' when the work tree differs (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "-"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": {dist: _version(dist) for dist in
                     ("aiconexus-gateway", "tornado", "PyNaCl", "orjson", "prometheus-client",
                      "psutil")},
        "tornado_speedups": importlib.util.find_spec("tornado.speedups") is not None,
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# -- targets -------------------------------------------------------------------------------------------


@dataclass
class Target:
    number: int
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run, or measured on a run that lost messages
    note: str = ""


def _find(results: Sequence[Result], scenario: str, system_prefix: str) -> Result | None:
    """The traffic row of `scenario` for a system (capacity rows have `agents` set)."""
    for result in results:
        if (result.scenario == scenario and result.system.startswith(system_prefix)
                and result.agents is None):
            return result
    return None


def _usable(*rows: Result | None) -> bool:
    return all(row is not None and row.valid for row in rows)


def targets(results: Sequence[Result], opts: Options) -> list[Target]:
    out: list[Target] = []
    ceiling = _find(results, "5", "pynacl")
    all_mode = _find(results, "2", "gateway-all")
    handshake = _find(results, "2", "gateway-handshake")
    relay = _find(results, "6", "relay")
    note_quick = "quick sizes, not the target's" if opts.quick else ""

    if all_mode and ceiling and all_mode.msgs_per_s and ceiling.msgs_per_s:
        ratio = all_mode.msgs_per_s / ceiling.msgs_per_s
        out.append(Target(1, "default mode >= 0.5x the one-core verify ceiling",
                          f"{all_mode.msgs_per_s:,.0f} / {ceiling.msgs_per_s:,.0f} = {ratio:.2f}x",
                          ratio >= 0.5 if _usable(all_mode) else None,
                          _notes(_lb(all_mode), _cpu_bound(all_mode, ceiling))))
    else:
        out.append(Target(1, "default mode >= 0.5x the one-core verify ceiling", "not run", None))

    if handshake and relay and handshake.msgs_per_s and relay.msgs_per_s:
        ratio = handshake.msgs_per_s / relay.msgs_per_s
        out.append(Target(2, "handshake mode >= 0.9x the bare Tornado relay",
                          f"{handshake.msgs_per_s:,.0f} / {relay.msgs_per_s:,.0f} = {ratio:.2f}x",
                          ratio >= 0.9 if _usable(handshake, relay) else None,
                          _notes(_lb(handshake, relay), _per_cpu(handshake, relay))))
    else:
        out.append(Target(2, "handshake mode >= 0.9x the bare Tornado relay", "not run", None))

    capacity = [r for r in results if r.scenario == "1" and r.agents]
    if capacity:
        biggest = max(capacity, key=lambda r: r.agents or 0)
        per_agent = biggest.rss_per_agent_kb or 0.0
        seconds = biggest.seconds or 0.0
        ok = per_agent <= 22.0 and seconds <= 10.0 * (biggest.agents or 0) / 10000
        out.append(Target(3, "10,000 agents: <= 22 KB RSS each, registered in <= 10 s",
                          f"{biggest.agents:,} agents: {per_agent:.1f} KB each, {seconds:.1f} s",
                          ok if _usable(biggest) else None,
                          note_quick or ("" if biggest.agents == 10000 else "time scaled")))
    else:
        out.append(Target(3, "10,000 agents: <= 22 KB RSS each, registered in <= 10 s", "not run",
                          None))

    for base in (all_mode, handshake):
        if base is None:
            continue
        idle = _find(results, "4", base.system)
        if idle and idle.msgs_per_s and base.msgs_per_s:
            ratio = idle.msgs_per_s / base.msgs_per_s
            mode = base.system.removeprefix("gateway-")
            out.append(Target(4, f"{mode}: with {opts.idle:,} idle agents >= 0.9x without",
                              f"{idle.msgs_per_s:,.0f} / {base.msgs_per_s:,.0f} = {ratio:.2f}x",
                              ratio >= 0.9 if _usable(idle, base) else None,
                              _notes(note_quick, _lb(idle, base), _per_cpu(idle, base))))
    if not any(t.number == 4 for t in out):
        out.append(Target(4, "with idle agents >= 0.9x without", "not run", None))

    latencies = [r for r in results if r.scenario == "3" and r.p50_ms is not None
                 and r.p99_ms is not None]
    if latencies:
        first = latencies[0]  # the first mode run: the default mode unless --modes says otherwise
        others = "; ".join(f"{r.system.removeprefix('gateway-')}: p50 {r.p50_ms:.2f} ms, "
                           f"p99 {r.p99_ms:.2f} ms" for r in latencies[1:])
        out.append(Target(5, f"p50 <= 0.5 ms and p99 <= 5 ms at {opts.rate:,} msgs/s",
                          f"{first.system.removeprefix('gateway-')}: p50 {first.p50_ms:.2f} ms, "
                          f"p99 {first.p99_ms:.2f} ms",
                          first.p50_ms <= 0.5 and first.p99_ms <= 5.0  # type: ignore[operator]
                          if _usable(first) else None, others))
    else:
        out.append(Target(5, "p50 <= 0.5 ms and p99 <= 5 ms at 2,000 msgs/s", "not run", None))

    routed = [r for r in results if r.scenario in {"1", "2", "3", "4", "6", "7", "8"}]
    bad = [r for r in routed if not r.valid]
    out.append(Target(6, "zero lost, duplicated or reordered messages in every scenario",
                      "all clean" if not bad else
                      "; ".join(f"{r.scenario} {r.system}: {_problems(r)}" for r in bad),
                      not bad if routed else None))
    churned = next((r for r in results if r.scenario == "8"), None)
    if churned is not None and churned.agents:
        retained = float(churned.extra.get("retained_mb", 0.0))
        baseline = float(churned.extra.get("baseline_rss_mb", 0.0))
        out.append(Target(7, "memory comes back after churn: RSS within 5 MB of its baseline",
                          f"{retained:+.1f} MB after {churned.agents:,} connections "
                          f"(baseline {baseline:.0f} MB)",
                          retained <= 5.0 if _usable(churned) else None, note_quick))
    else:
        out.append(Target(7, "memory comes back after churn: RSS within 5 MB of its baseline",
                          "not run", None))

    return out


def _per_cpu(numerator: Result, denominator: Result) -> str:
    """The same ratio from server CPU time per message: what the run would show on a quiet machine."""
    if not (numerator.server_us_per_msg and denominator.server_us_per_msg):
        return ""
    return f"per server CPU second: {denominator.server_us_per_msg / numerator.server_us_per_msg:.2f}x"


def _cpu_bound(row: Result, ceiling: Result) -> str:
    if not (row.server_us_per_msg and ceiling.msgs_per_s):
        return ""
    return f"per server CPU second: {1e6 / row.server_us_per_msg / ceiling.msgs_per_s:.2f}x"


def _notes(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _lb(*rows: Result | None) -> str:
    saturated = [r.system for r in rows if r is not None and r.lower_bound]
    return f"load generator saturated ({', '.join(saturated)}): lower bound" if saturated else ""


def _problems(result: Result) -> str:
    parts = [f"{value} {label}" for value, label in (
        (result.lost, "lost"), (result.duplicated, "duplicated"), (result.out_of_order, "reordered"),
        (result.errors, "errors"), (result.failures, "failed connects")) if value]
    return ", ".join(parts) or "clean"


# -- tables ----------------------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def render(info: dict[str, Any], results: Sequence[Result], goals: Sequence[Target],
           opts: Options, pending: Sequence[str]) -> str:
    out = [f"AIConexus Gateway benchmark - {info['date']} - commit {info['commit']}"
           f"{' - QUICK sizes' if opts.quick else ''}",
           f"{info['cores']} cores ({info['cpu']}), {info['python']}, "
           + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
           "gateway: default settings except "
           + ", ".join(f"{k}={v}" for k, v in {**BENCH_LIMITS, **opts.gateway_env}.items())
           + " (one load-generator address stands for thousands of agents)", ""]

    capacity = [r for r in results if r.agents]
    if capacity:
        out.append("Capacity (connect + register; RSS per agent = RSS growth / agents; for (8) "
                   "churn, KB/agent is the RSS left per connection once all are gone)")
        out.append(_table(
            ["#", "what", "system", "seconds", "agents/s", "KB/agent", "srv us/agent", "srv RSS MB",
             "srv CPU%", "gen CPU%", "other%", "check"],
            [[r.scenario, r.name, r.system, _num(r.seconds, ".2f"), _num(r.msgs_per_s),
              _num(r.rss_per_agent_kb, ".1f"), _num(r.server_us_per_msg, ".0f"),
              _num(r.server_rss_mb, ".0f"),
              _num(r.server_cpu_pct, ".0f"), _num(r.loadgen_cpu_pct, ".0f"),
              _num(r.other_cpu_pct, ".0f"),
              "ok" if r.valid else "INVALID: " + _problems(r)] for r in capacity]))
        out.append("")

    traffic = [r for r in results if not r.agents]
    if traffic:
        out.append("Traffic (latency = sender write -> recipient read, in ms)")
        out.append(_table(
            ["#", "what", "system", "msgs/s", "median/s", "p50", "p90", "p99", "max",
             "lost/dup/ooo/err", "srv us/msg", "srv CPU%", "gen CPU%", "other%", "srv RSS MB", "check"],
            [[r.scenario, r.name, r.system, _num(r.msgs_per_s), _num(r.msgs_per_s_median),
              _num(r.p50_ms, ".2f"), _num(r.p90_ms, ".2f"), _num(r.p99_ms, ".2f"),
              _num(r.max_ms, ".1f"),
              "-" if r.scenario == "5" else
              f"{r.lost}/{r.duplicated}/{r.out_of_order}/{r.errors}",
              _num(r.server_us_per_msg, ".0f"),
              _num(r.server_cpu_pct, ".0f"), _num(r.loadgen_cpu_pct, ".0f"),
              _num(r.other_cpu_pct, ".0f"), _num(r.server_rss_mb, ".0f"), _check(r)]
             for r in traffic]))
        out.append("")

    out.append("Targets (ratios within this run)")
    out.append(_table(["target", "goal", "measured", "result", "note"],
                      [[str(t.number), t.goal, t.measured,
                        {True: "MET", False: "NOT MET", None: "n/a"}[t.met], t.note]
                       for t in goals]))
    notes = [f"  {r.scenario} {r.system}: {n}" for r in results for n in r.notes]
    if notes:
        out += ["", "Notes", *notes]
    if pending:
        out += ["", *pending]
    return "\n".join(out)


def _check(result: Result) -> str:
    if not result.valid:
        return "INVALID: " + _problems(result)
    return "lower bound (generator saturated)" if result.lower_bound else "ok"


def write_json(path: str, info: dict[str, Any], results: Sequence[Result],
               goals: Sequence[Target], opts: Options, pending: Sequence[str]) -> None:
    options = asdict(opts)
    options["scenarios"] = sorted(opts.scenarios)
    options.pop("redis_url", None)
    options["gateway_limits"] = BENCH_LIMITS  # raised for a one-address load generator (servers.py)
    document = {"machine": info, "options": options, "results": [r.as_dict() for r in results],
                "targets": [asdict(t) for t in goals], "pending": list(pending)}
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

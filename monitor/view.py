"""What the screens show, as one pure function of what the monitor knows.

`main_view(status, observed, sort_key, filter_text)` is the whole main screen (status bar,
totals, caption, rows); `agent_details` is the detail screen. The widgets only draw these
values, so everything on screen is tested here with plain values and no terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from .changes import Observed
from .contract import Agent, Mailbox
from .formatting import (
    format_age,
    format_count,
    format_counter,
    format_duration,
    format_rate,
    shorten_did,
    sparkline_data,
)
from .selection import SortKey, filter_agents, sort_agents
from .status import Status

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("did", "Agent DID", 21),
    ("name", "Name", 9),
    ("connected", "Connected", 9),
    ("activity", "Active", 8),
    ("sent", "Sent", 6),
    ("received", "Recv", 6),
    ("rate", "msg/s", 5),
)
"""(column key, label, width): fixed widths, so rows never shift as values change, and all of
it (with one cell of padding each side) fits 80 columns with a scrollbar."""


@dataclass(frozen=True)
class AgentRow:
    """One table row: `key` is the agent's full DID, the rest is text in column order."""

    key: str
    did: str
    name: str
    connected_for: str
    last_activity: str
    sent: str
    received: str
    rate: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.did,
            self.name,
            self.connected_for,
            self.last_activity,
            self.sent,
            self.received,
            self.rate,
        )


def agent_row(agent: Agent, rate: float | None, now: datetime) -> AgentRow:
    """What the table shows for one agent; `now` is the gateway's clock at the poll."""
    return AgentRow(
        key=agent.did,
        did=shorten_did(agent.did),
        name=agent.name,
        connected_for=format_duration((now - agent.connected_at).total_seconds()),
        last_activity=format_age(agent.last_activity, now),
        sent=format_counter(agent.messages_sent),
        received=format_counter(agent.messages_received),
        rate=format_rate(rate),
    )


def showing_text(shown: int, fetched: int, total: int, filter_text: str) -> str:
    """The table caption: `2 connected`, `showing 200 of 10,000`, or what the filter kept."""
    if filter_text:
        text = f"filter '{filter_text}': {format_count(shown)} of {format_count(fetched)} match"
        if fetched < total:
            text += f" (first {format_count(fetched)} of {format_count(total)} fetched)"
        return text
    if shown < total:
        return f"showing {format_count(shown)} of {format_count(total)}"
    return f"{format_count(total)} connected"


@dataclass(frozen=True)
class Total:
    """A headline number and the points of its sparkline."""

    text: str
    points: tuple[float, ...]


@dataclass(frozen=True)
class MainView:
    """Everything the main screen shows."""

    status: Status
    agents: Total
    rate: Total
    caption: str
    rows: tuple[AgentRow, ...]

    @property
    def stale(self) -> bool:
        return self.status.stale


def main_view(
    status: Status,
    observed: Observed | None,
    sort_key: SortKey,
    filter_text: str,
    *,
    history: int,
) -> MainView:
    """The main screen for this state; `history` is how many polls the sparklines span."""
    parts = [f"Agents · sorted by {sort_key.value}"]
    if observed is None:
        parts.append("waiting for the gateway")
        agents = Total("Agents", tuple(sparkline_data([], 2)))
        rate = Total("Messages/s", tuple(sparkline_data([], 2)))
        rows: tuple[AgentRow, ...] = ()
    else:
        snapshot = observed.snapshot
        shown = filter_agents(sort_agents(snapshot.agents.values(), sort_key), filter_text)
        now = snapshot.health.timestamp
        rows = tuple(agent_row(agent, observed.rates.get(agent.did), now) for agent in shown)
        parts.append(
            showing_text(len(shown), len(snapshot.agents), snapshot.total, filter_text)
        )
        rate_text = format_rate(observed.total_rate)
        if snapshot.partial:
            rate_text += f" (first {format_count(len(snapshot.agents))} agents)"
        agents = Total(
            f"Agents {format_count(snapshot.total)}",
            tuple(sparkline_data(observed.agent_history, history)),
        )
        rate = Total(
            f"Messages/s {rate_text}", tuple(sparkline_data(observed.rate_history, history))
        )
    if status.stale and status.last_ok is not None:
        parts.append(f"STALE: data from {status.last_ok:%H:%M:%S}")
    return MainView(status=status, agents=agents, rate=rate, caption=" · ".join(parts), rows=rows)


def mailbox_text(mailbox: Mailbox) -> str:
    """`3 waiting (1,234 bytes), 1 receipt; refuses 2 senders`: an agent's mailbox in one line."""
    text = (f"{format_count(mailbox.messages)} waiting ({format_count(mailbox.bytes)} bytes), "
            f"{format_count(mailbox.receipts)} receipt{'' if mailbox.receipts == 1 else 's'}")
    if not mailbox.enabled:
        text += "; refuses stored messages"
    elif mailbox.blocked:
        text += f"; refuses {mailbox.blocked} sender{'' if mailbox.blocked == 1 else 's'}"
    return text


def agent_details(did: str, observed: Observed | None, *, stale: bool) -> str:
    """The detail screen of one agent: its latest data, or that it is gone."""
    agent = observed.snapshot.agents.get(did) if observed is not None else None
    lines = [f"DID               {did}"]
    if observed is None or agent is None:
        lines += ["", "This agent is no longer connected."]
    else:
        now = observed.snapshot.health.timestamp
        metadata = json.dumps(dict(agent.metadata), indent=2, ensure_ascii=False)
        connected = agent.connected_at.isoformat(timespec="milliseconds")
        active = agent.last_activity.isoformat(timespec="milliseconds")
        connected += f"  (for {format_duration((now - agent.connected_at).total_seconds())})"
        active += f"  ({format_age(agent.last_activity, now)})"
        lines += [
            f"name              {agent.name or '-'}",
            f"connected at      {connected}",
            f"last activity     {active}",
            f"messages sent     {format_count(agent.messages_sent)}",
            f"messages received {format_count(agent.messages_received)}",
            f"rate              {format_rate(observed.rates.get(did))} msg/s",
            *([f"capabilities      {', '.join(agent.capabilities) or '-'}"
               f"{'  (unlisted)' if agent.unlisted else ''}"]
              if agent.capabilities or agent.unlisted else []),
            *([f"mailbox           {mailbox_text(agent.mailbox)}"] if agent.mailbox else []),
            "",
            "metadata",
            *(f"  {line}" for line in metadata.splitlines()),
        ]
        if agent.card is not None:
            card = json.dumps(dict(agent.card), indent=2, ensure_ascii=False)
            lines += ["", "card (signed by the agent)", *(f"  {line}" for line in card.splitlines())]
    if stale:
        lines += ["", "(the gateway is not answering: this is the last data seen)"]
    return "\n".join(lines)

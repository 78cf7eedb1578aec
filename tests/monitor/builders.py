"""Plain values for the pure tests: agents, health, snapshots and their JSON, at fixed times."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from monitor.contract import Agent, Health, Snapshot

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)
DID_A = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
DID_B = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
DID_C = "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(
    did: str,
    *,
    connected: float = 0.0,
    active: float | None = None,
    sent: int = 0,
    received: int = 0,
    name: str | None = None,
) -> Agent:
    return Agent(
        did=did,
        connected_at=at(connected),
        last_activity=at(connected if active is None else active),
        messages_sent=sent,
        messages_received=received,
        metadata={} if name is None else {"name": name},
    )


def health(seconds: float = 0.0, **changes: Any) -> Health:
    base = Health(
        status="healthy",
        connected_agents=0,
        timestamp=at(seconds),
        version="0.1.0",
        gateway_did=DID_C,
        uptime_seconds=seconds + 100,
    )
    return replace(base, **changes)


def snapshot(seconds: float, *agents: Agent, total: int | None = None) -> Snapshot:
    return Snapshot(
        health=health(seconds),
        agents={a.did: a for a in agents},
        total=len(agents) if total is None else total,
        taken_at=seconds,
    )


def agent_json(did: str = DID_A, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "did": did,
        "connected_at": "2026-11-26T10:00:00.123Z",
        "last_activity": "2026-11-26T10:00:05.456Z",
        "messages_sent": 3,
        "messages_received": 4,
        "metadata": {"name": "alice"},
    }
    body.update(changes)
    return body


HEALTH_JSON: dict[str, Any] = {
    "status": "healthy",
    "connected_agents": 2,
    "timestamp": "2026-11-26T10:00:00.123Z",
    "version": "0.1.0",
    "gateway_did": DID_C,
    "uptime_seconds": 12.3,
}

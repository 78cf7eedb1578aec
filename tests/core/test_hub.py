"""The Hub carrying out session decisions, through an in-memory Connection (its only I/O boundary)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from aiconexus_gateway import __version__
from aiconexus_gateway.admission import AdmissionSettings
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.connections import TIMED_FRAME
from aiconexus_gateway.errors import CloseCode, Ending, ErrorCode, ProtocolError
from aiconexus_gateway.hub import Hub, HubSettings, Peer, agent_view, idle_delay
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import ROUTABLE_TYPES
from aiconexus_gateway.peer import AgentRecord
from aiconexus_gateway.routing import Router
from aiconexus_gateway.session import Forward, Register, SessionSettings, State
from aiconexus_gateway.views import MAX_OFFSET, Views
from tests.support.memory import MemoryConnection

from .support import ALICE, BOB, CAROL, GATEWAY, NONCE, NONCE_B64URL, frame

AGENT_TIMEOUT = 300.0


def last(connection: MemoryConnection) -> dict[str, Any]:
    """The last frame sent to `connection`, its gateway signature checked."""
    frame_ = connection.last(signed_by=GATEWAY)
    return {"type": frame_["type"], "payload": frame_["payload"],
            "correlation_id": frame_.get("correlation_id"), "to": frame_["to"]}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hub(clock: ManualClock) -> Hub:
    settings = HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0))
    return Hub(settings, GATEWAY, clock=clock, nonce_source=lambda n: NONCE[:n])


def _register(hub: Hub, key: DIDKey, metadata: dict[str, Any] | None = None
              ) -> tuple[Peer, MemoryConnection]:
    connection = MemoryConnection()
    peer = hub.open(connection)
    body: dict[str, Any] = {"nonce": NONCE_B64URL}
    if metadata is not None:
        body["metadata"] = metadata
    hub.receive(peer, frame(key, "REGISTER", hub.did, body)[0])
    assert last(connection)["type"] == "REGISTERED", last(connection)
    return peer, connection


def _sample(hub: Hub, name: str, **labels: str) -> float:
    value = hub.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_open_sends_a_challenge_and_counts_the_connection(hub: Hub) -> None:
    connection = MemoryConnection()
    peer = hub.open(connection)
    assert peer in hub.peers and peer.did is None and peer.record is None
    challenge = last(connection)
    assert challenge["type"] == "CHALLENGE" and challenge["to"] is None
    assert challenge["payload"]["nonce"] == NONCE_B64URL
    assert _sample(hub, "aiconexus_connections_total", result="accepted") == 1


def test_registration_makes_the_agent_known(hub: Hub, clock: ManualClock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiconexus.gateway")
    peer, connection = _register(hub, ALICE, {"name": "alice"})
    assert peer.did == ALICE.did and peer.record is not None
    assert hub.registry.get(ALICE.did) is peer and peer.session.state is State.REGISTERED
    assert connection.registrations == 1  # its idle clock started
    assert last(connection)["payload"]["session_id"] == peer.session.session_id
    assert connection.closed_with is None
    assert _sample(hub, "aiconexus_registrations_total", result="ok") == 1
    assert any(ALICE.did in r.getMessage() and "registered" in r.getMessage() for r in caplog.records)
    assert hub.agent(ALICE.did) == {
        "did": ALICE.did, "connected_at": "2026-09-21T14:30:00.000Z",
        "last_activity": "2026-09-21T14:30:00.000Z", "messages_sent": 0, "messages_received": 0,
        "metadata": {"name": "alice"},
    }


def test_failed_registration_sends_error_closes_and_counts_by_code(hub: Hub) -> None:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(ALICE, "REGISTER", hub.did, {"nonce": "wrong"})[0])
    assert last(connection)["payload"]["code"] == "AUTH_FAILED"
    assert connection.closed_with == (4401, "AUTH_FAILED")
    assert len(hub.registry) == 0
    assert _sample(hub, "aiconexus_registrations_total", result="AUTH_FAILED") == 1
    assert _sample(hub, "aiconexus_errors_total", code="AUTH_FAILED") == 1


@pytest.mark.parametrize("type_", sorted(ROUTABLE_TYPES))
def test_routable_message_is_delivered_unchanged_and_counted(hub: Hub, clock: ManualClock,
                                                             type_: str) -> None:
    alice, alice_conn = _register(hub, ALICE)
    _, bob_conn = _register(hub, BOB)
    clock.advance(5.0)
    text, _ = frame(ALICE, type_, BOB.did, {"sdp": "v=0"})
    hub.receive(alice, text)
    assert bob_conn.sent[-1] == text
    assert len(alice_conn.sent) == 2  # CHALLENGE, REGISTERED: nothing came back
    view = hub.agent(ALICE.did)
    assert view is not None
    assert (view["messages_sent"], view["last_activity"]) == (1, "2026-09-21T14:30:05.000Z")
    assert hub.agent(BOB.did)["messages_received"] == 1  # type: ignore[index]
    assert _sample(hub, "aiconexus_messages_routed_total", type=type_) == 1
    assert _sample(hub, "aiconexus_routing_latency_seconds_count") == 1


def test_messages_from_one_sender_arrive_in_order(hub: Hub) -> None:
    alice, _ = _register(hub, ALICE)
    _, bob_conn = _register(hub, BOB)
    texts = [frame(ALICE, "ICE_CANDIDATE", BOB.did, {"n": i})[0] for i in range(20)]
    for text in texts:
        hub.receive(alice, text)
    assert bob_conn.sent[2:] == texts


def test_routing_is_logged_only_at_debug(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    alice, _ = _register(hub, ALICE)
    _register(hub, BOB)
    caplog.set_level(logging.INFO, logger="aiconexus.gateway")
    hub.receive(alice, frame(ALICE, "OFFER", BOB.did)[0])
    assert not any("routed" in r.getMessage() for r in caplog.records)
    caplog.set_level(logging.DEBUG, logger="aiconexus.gateway")
    text, message_id = frame(ALICE, "OFFER", BOB.did)
    hub.receive(alice, text)
    assert any(r.levelno == logging.DEBUG and message_id in r.getMessage() for r in caplog.records)


def test_message_for_an_agent_that_is_not_connected_is_unknown_agent(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    text, message_id = frame(ALICE, "OFFER", CAROL.did)
    hub.receive(alice, text)
    error = last(connection)
    assert error["type"] == "ERROR" and error["to"] == ALICE.did
    assert error["payload"]["code"] == "UNKNOWN_AGENT"
    assert error["payload"]["details"] == {"to": CAROL.did}
    assert error["correlation_id"] == message_id
    assert connection.closed_with is None
    assert _sample(hub, "aiconexus_errors_total", code="UNKNOWN_AGENT") == 1


def test_message_the_recipient_connection_cannot_take_is_delivery_failed(hub: Hub) -> None:
    alice, alice_conn = _register(hub, ALICE)
    _, bob_conn = _register(hub, BOB)
    bob_conn.accepting = False
    text, message_id = frame(ALICE, "OFFER", BOB.did)
    hub.receive(alice, text)
    error = last(alice_conn)
    assert (error["payload"]["code"], error["correlation_id"]) == ("DELIVERY_FAILED", message_id)
    assert hub.agent(BOB.did)["messages_received"] == 0  # type: ignore[index]
    assert _sample(hub, "aiconexus_messages_routed_total", type="OFFER") == 0


def test_invalid_message_after_registration_is_answered_and_counted(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    hub.receive(alice, frame(BOB, "OFFER", ALICE.did)[0])
    assert last(connection)["payload"]["code"] == "SENDER_MISMATCH"
    assert connection.closed_with is None
    assert _sample(hub, "aiconexus_errors_total", code="SENDER_MISMATCH") == 1
    assert hub.agent(ALICE.did)["messages_sent"] == 1  # type: ignore[index]


def test_ping_to_the_gateway_gets_a_pong(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    text, message_id = frame(ALICE, "PING", hub.did, {"t": 1})
    hub.receive(alice, text)
    assert last(connection) == {"type": "PONG", "payload": {"t": 1}, "correlation_id": message_id,
                                 "to": ALICE.did}


def test_unregister_closes_1000_and_closing_removes_the_agent(hub: Hub,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiconexus.gateway")
    alice, connection = _register(hub, ALICE)
    hub.receive(alice, frame(ALICE, "UNREGISTER", hub.did)[0])
    assert connection.closed_with == (1000, "unregistered")
    assert len(connection.sent) == 2  # no ERROR
    hub.closed(alice, 1000, "unregistered")
    assert ALICE.did not in hub.registry and alice not in hub.peers
    assert _sample(hub, "aiconexus_disconnections_total", reason="normal") == 1
    assert any("disconnected" in r.getMessage() and ALICE.did in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("code", "reason", "label"), [
    (1000, None, "normal"), (1001, "bye", "going_away"), (1006, None, "other"), (None, None, "other"),
])
def test_disconnections_are_counted_by_reason(hub: Hub, code: int | None, reason: str | None,
                                              label: str) -> None:
    alice, _ = _register(hub, ALICE)
    hub.closed(alice, code, reason)
    assert len(hub.registry) == 0
    assert _sample(hub, "aiconexus_disconnections_total", reason=label) == 1
    hub.closed(alice, code, reason)  # a second notice changes nothing
    assert _sample(hub, "aiconexus_disconnections_total", reason=label) == 1


def test_closing_an_unregistered_connection_forgets_it_quietly(hub: Hub) -> None:
    peer = hub.open(MemoryConnection())
    hub.closed(peer, 1006, None)
    assert peer not in hub.peers and peer.session.state is State.CLOSED
    assert _sample(hub, "aiconexus_disconnections_total", reason="other") == 0


def test_second_registration_replaces_the_first_session(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiconexus.gateway")
    old, old_conn = _register(hub, ALICE)
    new, new_conn = _register(hub, ALICE)
    error = last(old_conn)
    assert (error["type"], error["payload"]["code"]) == ("ERROR", "SESSION_REPLACED")
    assert old_conn.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert old.session.state is State.CLOSED and old.session.ending is Ending.SESSION_REPLACED
    assert hub.registry.get(ALICE.did) is new
    assert len(hub.registry) == 1
    assert _sample(hub, "aiconexus_disconnections_total", reason="session_replaced") == 1
    assert any("replaced" in r.getMessage() for r in caplog.records)
    # messages for the DID go to the new connection only
    bob, _ = _register(hub, BOB)
    text, _ = frame(BOB, "OFFER", ALICE.did)
    hub.receive(bob, text)
    assert new_conn.sent[-1] == text and text not in old_conn.sent
    # the old connection's close, arriving later, does not remove the new record
    hub.closed(old, 4409, "SESSION_REPLACED")
    assert hub.registry.get(ALICE.did) is new
    assert _sample(hub, "aiconexus_disconnections_total", reason="session_replaced") == 1


def test_replaced_session_moves_to_the_end_of_the_connection_order(hub: Hub) -> None:
    _register(hub, ALICE)
    _register(hub, BOB)
    _register(hub, ALICE)
    assert [a["did"] for a in hub.agents_page(10, 0)["agents"]] == [BOB.did, ALICE.did]


def test_challenge_expiry_closes_4408_unless_registered(hub: Hub) -> None:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.challenge_expired(peer)
    assert last(connection)["payload"]["code"] == "TIMEOUT"
    assert connection.closed_with == (4408, "TIMEOUT")
    assert _sample(hub, "aiconexus_registrations_total", result="TIMEOUT") == 1
    alice, alice_conn = _register(hub, ALICE)
    hub.challenge_expired(alice)
    assert alice_conn.closed_with is None and len(alice_conn.sent) == 2


def test_binary_frame_before_registration_closes_4400(hub: Hub) -> None:
    connection = MemoryConnection()
    hub.receive_binary(hub.open(connection))
    assert connection.closed_with == (4400, "MALFORMED_MESSAGE")


def test_binary_frame_after_registration_is_answered(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    hub.receive_binary(alice)
    assert last(connection)["payload"]["code"] == "MALFORMED_MESSAGE"
    assert connection.closed_with is None


def test_io_layer_errors_go_through_the_session(hub: Hub) -> None:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.reject(peer, ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, "frame too large"))
    assert connection.closed_with == (1009, "message too big")
    alice, alice_conn = _register(hub, ALICE)
    hub.reject(alice, ProtocolError(ErrorCode.RATE_LIMITED, "slow down"))
    assert last(alice_conn)["payload"]["code"] == "RATE_LIMITED"
    assert _sample(hub, "aiconexus_errors_total", code="RATE_LIMITED") == 1


def test_close_all_closes_every_connection(hub: Hub) -> None:
    alice, alice_conn = _register(hub, ALICE)
    pending_conn = MemoryConnection()
    pending = hub.open(pending_conn)
    hub.close_all()
    assert alice_conn.closed_with == pending_conn.closed_with == (1001, "gateway shutting down")
    assert alice.session.state is pending.session.state is State.CLOSED


def test_check_idle_waits_then_closes_a_silent_agent(hub: Hub, clock: ManualClock) -> None:
    alice, connection = _register(hub, ALICE)
    assert hub.check_idle(alice) == AGENT_TIMEOUT
    clock.advance(200.0)
    hub.receive(alice, frame(ALICE, "PING", hub.did)[0])  # any frame resets the idle timer
    clock.advance(100.0)
    assert hub.check_idle(alice) == pytest.approx(200.0)
    clock.advance(200.0)
    assert hub.check_idle(alice) is None
    assert last(connection)["payload"]["code"] == "TIMEOUT"
    assert "300 s" in last(connection)["payload"]["message"]
    assert connection.closed_with == (4408, "agent timeout")
    assert alice.session.state is State.CLOSED
    sent = len(connection.sent)
    assert hub.check_idle(alice) is None and len(connection.sent) == sent


def test_binary_frames_also_count_as_activity(hub: Hub, clock: ManualClock) -> None:
    alice, _ = _register(hub, ALICE)
    clock.advance(250.0)
    hub.receive_binary(alice)
    assert hub.check_idle(alice) == AGENT_TIMEOUT


def test_idle_delay_is_the_time_left() -> None:
    assert idle_delay(last_frame=10.0, agent_timeout=5.0, now=12.0) == 3.0
    assert idle_delay(last_frame=10.0, agent_timeout=5.0, now=15.0) == 0.0
    assert idle_delay(last_frame=10.0, agent_timeout=5.0, now=20.0) < 0


def test_agents_page_pages_in_connection_order_with_the_total_count(hub: Hub, clock: ManualClock) -> None:
    keys = [DIDKey.from_seed(bytes([i]) * 32) for i in range(5)]
    for key in keys:
        _register(hub, key)
        clock.advance(1.0)
    dids = [k.did for k in keys]
    first = hub.agents_page(2, 0)
    assert first["count"] == 5 and (first["limit"], first["offset"]) == (2, 0)
    assert [a["did"] for a in first["agents"]] == dids[:2]
    assert [a["did"] for a in hub.agents_page(2, 2)["agents"]] == dids[2:4]
    assert [a["did"] for a in hub.agents_page(2, 4)["agents"]] == dids[4:]
    assert hub.agents_page(10, 5)["agents"] == []
    assert [a["did"] for a in hub.agents_page(100, 0)["agents"]] == dids
    times = [a["connected_at"] for a in hub.agents_page(100, 0)["agents"]]
    assert times == sorted(times) and len(set(times)) == 5


def test_agent_view_of_an_unknown_did_is_none(hub: Hub) -> None:
    assert hub.agent(ALICE.did) is None


def test_agent_view_formats_times_as_iso_utc(hub: Hub) -> None:
    _, _ = _register(hub, ALICE)
    peer = hub.registry.get(ALICE.did)
    assert peer is not None and peer.record is not None
    peer.record.last_activity = peer.record.connected_at + 1.5
    view = agent_view(peer)
    assert view["last_activity"] == "2026-09-21T14:30:01.500Z"


def test_health_reports_status_agents_identity_and_uptime(hub: Hub, clock: ManualClock) -> None:
    _register(hub, ALICE)
    _register(hub, BOB)
    clock.advance(12.3)
    assert hub.health() == {
        "status": "healthy", "connected_agents": 2, "timestamp": "2026-09-21T14:30:12.300Z",
        "version": __version__, "gateway_did": GATEWAY.did, "uptime_seconds": 12.3,
    }
    hub.draining = True
    assert hub.health()["status"] == "draining"


def test_metrics_exposition_contains_every_series(hub: Hub) -> None:
    alice, _ = _register(hub, ALICE)
    _register(hub, BOB)
    hub.receive(alice, frame(ALICE, "OFFER", BOB.did)[0])
    hub.receive(alice, frame(ALICE, "OFFER", CAROL.did)[0])
    text = hub.metrics.exposition().decode()
    for series in (
        "aiconexus_connected_agents 2.0",
        'aiconexus_connections_total{result="accepted"} 2.0',
        'aiconexus_registrations_total{result="ok"} 2.0',
        'aiconexus_registrations_total{result="AUTH_FAILED"} 0.0',
        'aiconexus_messages_routed_total{type="OFFER"} 1.0',
        'aiconexus_messages_routed_total{type="ICE_CANDIDATE"} 0.0',
        'aiconexus_errors_total{code="UNKNOWN_AGENT"} 1.0',
        "aiconexus_routing_latency_seconds_count 1.0",
        'aiconexus_routing_latency_seconds_bucket{le="+Inf"} 1.0',
        "# TYPE aiconexus_disconnections_total counter",
    ):
        assert series in text, series


def test_each_hub_has_its_own_metrics_registry(clock: ManualClock) -> None:
    settings = HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0))
    first, second = Hub(settings, GATEWAY, clock=clock), Hub(settings, GATEWAY, clock=clock)
    first.open(MemoryConnection())
    assert _sample(first, "aiconexus_connections_total", result="accepted") == 1
    assert _sample(second, "aiconexus_connections_total", result="accepted") == 0


def test_hub_defaults_to_the_real_clock_and_random_nonces() -> None:
    settings = HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0))
    hub = Hub(settings, GATEWAY)
    first, second = MemoryConnection(), MemoryConnection()
    hub.open(first)
    hub.open(second)
    assert last(first)["payload"]["nonce"] != last(second)["payload"]["nonce"]
    assert hub.did == GATEWAY.did


# -- limits (ratelimit.py and admission.py decide; connections.py carries it out) -------------


def _limited_hub(clock: ManualClock, rate: float = 1.0, burst: int = 2, **admission: Any) -> Hub:
    settings = HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0, rate_limit=rate, rate_burst=burst),
                           AdmissionSettings(**admission))
    return Hub(settings, GATEWAY, clock=clock, nonce_source=lambda n: NONCE[:n])


def test_frames_over_the_rate_limit_are_answered_rate_limited_and_not_routed(clock: ManualClock) -> None:
    hub = _limited_hub(clock, rate=1.0, burst=3)
    alice, alice_conn = _register(hub, ALICE)  # REGISTER took one token
    _, bob_conn = _register(hub, BOB)
    hub.receive(alice, frame(ALICE, "OFFER", BOB.did)[0])
    hub.receive(alice, frame(ALICE, "OFFER", BOB.did)[0])
    assert len(bob_conn.sent) == 4
    text, _message_id = frame(ALICE, "OFFER", BOB.did)
    hub.receive(alice, text)
    assert text not in bob_conn.sent
    error = last(alice_conn)
    assert (error["payload"]["code"], error["correlation_id"]) == ("RATE_LIMITED", None)  # unparsed
    assert error["payload"]["details"] == {"retry_after": 1.0, "rate_limit": 1.0, "burst": 3.0}
    assert alice_conn.closed_with is None
    assert _sample(hub, "aiconexus_errors_total", code="RATE_LIMITED") == 1
    clock.advance(1.0)  # a token came back
    hub.receive(alice, text)
    assert bob_conn.sent[-1] == text


def test_a_connection_that_keeps_sending_over_the_limit_is_closed_4429(clock: ManualClock,
                                                                      caplog: pytest.LogCaptureFixture
                                                                      ) -> None:
    hub = _limited_hub(clock, rate=1.0, burst=1)
    peer, connection = _register(hub, ALICE)  # REGISTER took the one token
    hub.receive(peer, "y")
    assert last(connection)["payload"]["code"] == "RATE_LIMITED"
    assert connection.closed_with is None
    hub.receive(peer, "z")
    assert connection.closed_with == (CloseCode.RATE_LIMITED, "rate limited")
    assert peer.session.state is State.CLOSED
    assert any("rate limit" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    sent = len(connection.sent)
    hub.receive(peer, "after close")  # frames still in flight: nobody to answer
    hub.receive_binary(peer)
    assert len(connection.sent) == sent


def test_binary_frames_count_against_the_rate_limit(clock: ManualClock) -> None:
    hub = _limited_hub(clock, rate=1.0, burst=2)
    alice, connection = _register(hub, ALICE)
    hub.receive_binary(alice)
    assert last(connection)["payload"]["code"] == "MALFORMED_MESSAGE"
    hub.receive_binary(alice)
    error = last(connection)
    assert (error["payload"]["code"], error["correlation_id"]) == ("RATE_LIMITED", None)


def test_internal_error_is_answered_and_keeps_a_registered_session(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    hub.internal_error(alice, '{"id": "m-9"}')
    error = last(connection)
    assert (error["payload"]["code"], error["correlation_id"]) == ("INTERNAL_ERROR", "m-9")
    assert connection.closed_with is None


def test_internal_error_during_the_handshake_closes_1011(hub: Hub) -> None:
    connection = MemoryConnection()
    hub.internal_error(hub.open(connection), "not json")
    assert connection.closed_with == (CloseCode.INTERNAL_ERROR, "INTERNAL_ERROR")


def test_admission_refusals_are_counted_and_release_frees_the_slot(clock: ManualClock) -> None:
    hub = _limited_hub(clock, max_connections_per_ip=1)
    assert hub.admit("10.0.0.1") is None
    refusal = hub.admit("10.0.0.1")
    assert refusal is not None and refusal.status == 429
    assert _sample(hub, "aiconexus_connections_refused_total", reason="max_connections_per_ip") == 1
    assert hub.admit("10.0.0.2") is None
    hub.release("10.0.0.1")
    assert hub.admit("10.0.0.1") is None


def test_slow_consumer_is_closed_4008(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    alice, connection = _register(hub, ALICE)
    hub.slow_consumer(alice, 2_000_000, 1_048_576)
    assert connection.closed_with == (CloseCode.SLOW_CONSUMER, "slow consumer")
    assert alice.session.state is State.CLOSED
    assert any("slow consumer" in r.getMessage() for r in caplog.records)
    hub.closed(alice, 4008, "slow consumer")
    assert _sample(hub, "aiconexus_disconnections_total", reason="slow_consumer") == 1


def test_frames_lost_at_close_are_reported_to_their_senders(hub: Hub) -> None:
    """The connection hands back the Forward each agent's frame was sent with: no parsing."""
    _, alice_conn = _register(hub, ALICE)
    alice_sent = len(alice_conn.sent)
    bob, bob_conn = _register(hub, BOB)
    lost, lost_id = frame(ALICE, "OFFER", BOB.did)
    hub.receive(hub.registry.get(ALICE.did), lost)  # type: ignore[arg-type]
    routed = bob_conn.routed[-1]
    assert isinstance(routed, Forward) and (routed.sender, routed.id) == (ALICE.did, lost_id)
    assert bob_conn.routed[0] is None  # the gateway's own CHALLENGE is not an agent's frame
    from_gone_agent = Forward(BOB.did, "{}", "OFFER", "m-gone", CAROL.did)
    hub.lost(bob, [from_gone_agent, routed])
    error = last(alice_conn)
    assert (error["payload"]["code"], error["correlation_id"]) == ("DELIVERY_FAILED", lost_id)
    assert error["payload"]["details"] == {"to": BOB.did}
    assert len(alice_conn.sent) == alice_sent + 1
    assert _sample(hub, "aiconexus_undelivered_messages_total", reason="lost_at_close") == 2


def test_deliver_writes_a_frame_routed_by_another_instance(hub: Hub) -> None:
    _, bob_conn = _register(hub, BOB)
    text, _ = frame(ALICE, "ANSWER", BOB.did)
    assert hub.router.deliver(BOB.did, text, "ANSWER") is True
    assert bob_conn.sent[-1] == text
    assert hub.agent(BOB.did)["messages_received"] == 1  # type: ignore[index]
    assert _sample(hub, "aiconexus_messages_routed_total", type="ANSWER") == 1
    assert hub.router.deliver(BOB.did, text, "NOT_A_TYPE") is True  # counted nowhere, delivered
    assert hub.router.deliver(CAROL.did, text, "ANSWER") is False
    bob_conn.accepting = False
    assert hub.router.deliver(BOB.did, text, "ANSWER") is False


# -- the router strategy (cluster mode is a Router subclass; here one that records) ---------------


class RecordingRouter(Router):
    """A Router that, like the cluster's, sends unknown recipients elsewhere and completes
    registrations when told to."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub.registry, hub.actions, hub.metrics, hub.clock)
        self.elsewhere_texts: list[str] = []
        self.waiting: list[tuple[Peer, str]] = []
        self.unregistered: list[Peer] = []

    def elsewhere(self, peer: Peer, forward: Forward, started: float) -> None:
        self.elsewhere_texts.append(forward.text)

    def register(self, peer: Peer, action: Register) -> None:
        peer.record = AgentRecord(self.clock.wall(), action.metadata)
        self.waiting.append((peer, action.reply))

    def unregister(self, peer: Peer) -> bool:
        self.unregistered.append(peer)
        return super().unregister(peer)


def _recording(hub: Hub) -> RecordingRouter:
    router = RecordingRouter(hub)
    hub.use(router, hub.views)
    return router


def test_the_hub_sends_recipients_it_does_not_hold_to_its_router(hub: Hub) -> None:
    router = _recording(hub)
    alice, connection = _register_waiting(hub, router, ALICE)
    text, _ = frame(ALICE, "OFFER", CAROL.did)
    hub.receive(alice, text)
    assert router.elsewhere_texts == [text]
    assert last(connection)["type"] == "REGISTERED"  # no UNKNOWN_AGENT from this instance


def _register_waiting(hub: Hub, router: RecordingRouter, key: DIDKey) -> tuple[Peer, MemoryConnection]:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(key, "REGISTER", hub.did, {"nonce": NONCE_B64URL})[0])
    waiting, reply = router.waiting.pop()
    assert waiting is peer and router.complete(peer, reply)
    return peer, connection


def test_registering_lasts_until_the_router_completes_it(hub: Hub) -> None:
    router = _recording(hub)
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(ALICE, "REGISTER", hub.did, {"nonce": NONCE_B64URL})[0])
    assert peer.session.state is State.REGISTERING and ALICE.did not in hub.registry
    assert last(connection)["type"] == "CHALLENGE" and connection.registrations == 0
    hub.challenge_expired(peer)  # proven in time: the challenge timer cannot close it
    assert connection.closed_with is None
    _, reply = router.waiting.pop()
    assert router.complete(peer, reply) is True
    assert peer.session.state is State.REGISTERED and hub.registry.get(ALICE.did) is peer
    assert last(connection)["type"] == "REGISTERED" and connection.registrations == 1


def test_an_agent_gone_while_registering_is_never_registered(hub: Hub) -> None:
    router = _recording(hub)
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(ALICE, "REGISTER", hub.did, {"nonce": NONCE_B64URL})[0])
    hub.closed(peer, 1006, None)
    _, reply = router.waiting.pop()
    assert router.complete(peer, reply) is False
    assert ALICE.did not in hub.registry and last(connection)["type"] == "CHALLENGE"
    assert router.unregistered == [peer]


def test_evicting_a_session_replaced_elsewhere_closes_it_4409(hub: Hub) -> None:
    alice, connection = _register(hub, ALICE)
    hub.router.evict(alice, "the DID registered on another instance")
    assert connection.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert last(connection)["payload"]["code"] == "SESSION_REPLACED"
    assert ALICE.did not in hub.registry
    assert _sample(hub, "aiconexus_disconnections_total", reason="session_replaced") == 1
    hub.closed(alice, 4409, "SESSION_REPLACED")  # its close, later, counts nothing more
    assert _sample(hub, "aiconexus_disconnections_total", reason="session_replaced") == 1


class TaggedViews(Views):
    async def health_report(self) -> dict[str, Any]:
        return {**self.health(), "tagged": True}


@pytest.mark.gen_test
async def test_reports_come_from_the_views_the_hub_was_given(hub: Hub) -> None:
    _register(hub, ALICE)
    assert await hub.health_report() == hub.health()
    assert await hub.agents_report(10, 0) == hub.agents_page(10, 0)
    assert await hub.agent_report(ALICE.did) == hub.agent(ALICE.did)
    hub.use(hub.router, TaggedViews(hub.registry, hub.clock, hub.did, lambda: False))
    assert (await hub.health_report())["tagged"] is True


def test_an_offset_past_any_page_is_an_empty_page_not_an_error(hub: Hub) -> None:
    _register(hub, ALICE)
    page = hub.agents_page(100, 10**30)
    assert (page["agents"], page["count"], page["offset"]) == ([], 1, MAX_OFFSET)


# -- the work unauthenticated connections cost is charged to their address (issue 11) -------------


def _budget_hub(clock: ManualClock) -> Hub:
    """A hub whose addresses may cost it a microsecond of unauthenticated work."""
    settings = HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0),
                           AdmissionSettings(work_rate=1e-9, work_burst=1e-6))
    return Hub(settings, GATEWAY, clock=clock, nonce_source=lambda n: NONCE[:n])


def test_an_address_whose_handshakes_cost_too_much_is_refused_new_connections(
        clock: ManualClock) -> None:
    hub = _budget_hub(clock)
    assert hub.admit("10.0.0.1") is None
    peer = hub.open(MemoryConnection("10.0.0.1"))  # signing its CHALLENGE is charged
    hub.receive(peer, frame(ALICE, "REGISTER", hub.did, {"nonce": NONCE_B64URL})[0])
    refusal = hub.admit("10.0.0.1")
    assert refusal is not None and (refusal.status, refusal.code) == (429, "TOO_MUCH_WORK")
    assert _sample(hub, "aiconexus_connections_refused_total", reason="address_work") == 1
    assert hub.admit("10.0.0.2") is None  # other addresses pay for themselves


def test_an_unregistered_connection_of_an_address_over_budget_is_closed_4429(
        clock: ManualClock) -> None:
    hub = _budget_hub(clock)
    connection = MemoryConnection("10.0.0.1")
    peer = hub.open(connection)
    hub.receive(peer, "{" * 1000)  # malformed work is charged too
    assert connection.closed_with is not None
    first = hub.open(MemoryConnection("10.0.0.1"))
    assert first.session.state is State.CLOSED and first.session.ending is Ending.RATE_LIMITED
    assert first.connection.closed_with == (CloseCode.RATE_LIMITED, "rate limited")  # type: ignore[attr-defined]


def test_a_registered_agent_is_not_closed_for_its_address_budget(clock: ManualClock) -> None:
    hub = Hub(HubSettings(SessionSettings(30.0, AGENT_TIMEOUT, 20.0)), GATEWAY, clock=clock,
              nonce_source=lambda n: NONCE[:n])
    alice, connection = _register(hub, ALICE)
    assert hub.charge(connection.remote_ip, 3600.0) is True  # e.g. a flood of control frames
    assert hub.admit(connection.remote_ip) is not None
    hub.receive(alice, frame(ALICE, "PING", hub.did)[0])
    assert connection.closed_with is None and last(connection)["type"] == "PONG"


class _StallingConnection(MemoryConnection):
    """A recipient whose `send` waits without using the CPU, as a frame waits on a busy host."""

    def send(self, text: str, routed: Any = None) -> bool:
        time.sleep(0.004)  # twice ratelimit.COST_UNIT of wall time, next to no CPU time
        return super().send(text, routed)


@pytest.mark.parametrize("padding", [0, TIMED_FRAME])
def test_time_a_frame_spends_waiting_for_the_cpu_costs_no_tokens(clock: ManualClock,
                                                                 padding: int) -> None:
    """Work is charged in CPU time: a host too busy to run the gateway at once must not make an
    honest agent's frames dearer (short frames are not timed; long ones are, in CPU time)."""
    hub = _limited_hub(clock, rate=1.0, burst=4)
    alice, alice_conn = _register(hub, ALICE)  # REGISTER took one token: 3 left
    bob = hub.open(_StallingConnection())
    hub.receive(bob, frame(BOB, "REGISTER", hub.did, {"nonce": NONCE_B64URL})[0])
    bob_conn = bob.connection
    assert isinstance(bob_conn, _StallingConnection) and len(bob_conn.sent) == 2  # + REGISTERED
    for _ in range(3):
        hub.receive(alice, frame(ALICE, "OFFER", BOB.did, {"sdp": "x" * padding})[0])
    assert len(bob_conn.sent) == 5, [json.loads(t)["type"] for t in alice_conn.sent]
    assert all(json.loads(text)["type"] != "ERROR" for text in alice_conn.sent)

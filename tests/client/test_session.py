"""ClientSession without sockets: frames and events in, decisions out, time and jitter fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiconexus_gateway.client.errors import ConnectionClosed, GatewayError, SendQueueFull
from aiconexus_gateway.client.reconnect import ReconnectPolicy
from aiconexus_gateway.client.session import (
    ClientSession,
    ClientSettings,
    ClientState,
    Deliver,
    Fail,
    Finish,
    PingAnswered,
    Reconnect,
    Refused,
    Registered,
    Report,
    Send,
)
from aiconexus_gateway.did import did_from_public_key
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import build, parse

WALL = 1_800_000_000.0
GATEWAY = DIDKey.from_seed(bytes([1]) * 32)
AGENT = DIDKey.from_seed(bytes(32))
PEER = DIDKey.from_seed(bytes([2]) * 32)
NONCE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
POLICY = ReconnectPolicy(initial_delay=1.0, max_delay=8.0, max_attempts=3)


def frame(key: DIDKey, type: str, to: str | None, payload: dict[str, Any],
          correlation_id: str | None = None) -> str:
    text, _ = build(key, type, to, payload, correlation_id=correlation_id, now=WALL)
    return text


def challenge(key: DIDKey = GATEWAY) -> str:
    return frame(key, "CHALLENGE", None, {"nonce": NONCE, "expires_in": 30})


def new_session(**settings: Any) -> ClientSession:
    return ClientSession(AGENT, ClientSettings(**settings), wall_clock=lambda: WALL,
                         jitter=lambda: 1.0)


def register(session: ClientSession, *, now: float = 0.0, agent_timeout: float = 300,
             rate_limit: dict[str, Any] | None = None) -> Registered:
    session.connecting()
    sent = session.receive(challenge(), now)
    assert isinstance(sent, Send)
    register_id = json.loads(sent.text)["id"]
    payload: dict[str, Any] = {"did": AGENT.did, "session_id": "s-1",
                               "agent_timeout": agent_timeout, "ping_interval": 20}
    if rate_limit is not None:
        payload["rate_limit"] = rate_limit
    done = session.receive(frame(GATEWAY, "REGISTERED", AGENT.did, payload, register_id), now)
    assert isinstance(done, Registered)
    return done


# -- handshake ---------------------------------------------------------------------------------


def test_a_new_session_is_idle_until_the_pump_connects() -> None:
    session = new_session()
    assert session.state is ClientState.IDLE and not session.registered and not session.reconnecting
    session.connecting()
    assert session.state is ClientState.CONNECTING


def test_a_challenge_is_answered_with_a_signed_register_carrying_nonce_and_metadata() -> None:
    session = new_session(metadata={"name": "alice"})
    session.connecting()
    decision = session.receive(challenge(), 0.0)
    assert isinstance(decision, Send)
    envelope = parse(decision.text)
    envelope.verify(AGENT.verify_key)
    assert (envelope.type, envelope.sender, envelope.recipient) == ("REGISTER", AGENT.did,
                                                                    GATEWAY.did)
    assert envelope.payload == {"nonce": NONCE, "metadata": {"name": "alice"}}
    assert session.state is ClientState.REGISTERING and session.gateway_did == GATEWAY.did


def test_registered_completes_the_handshake_with_the_announced_settings() -> None:
    session = new_session()
    done = register(session, agent_timeout=30,
                    rate_limit={"messages_per_second": 100.0, "burst": 200})
    assert done == Registered("s-1", reconnected=False, attempt=0)
    assert session.state is ClientState.REGISTERED and session.session_id == "s-1"
    assert session.agent_timeout == 30.0 and session.keepalive_period == 10.0


@pytest.mark.parametrize(("text", "expected"), [
    ("not json", "not a valid message"),
    (frame(GATEWAY, "PING", None, {}), "expected CHALLENGE, got PING"),
    (challenge(PEER), "not the expected"),
    (challenge().replace(NONCE, NONCE[::-1]), "does not verify"),
    (frame(GATEWAY, "CHALLENGE", None, {"expires_in": 30}), "no nonce"),
    (challenge().replace(GATEWAY.did, did_from_public_key(bytes([1]) + bytes(31))), "INVALID_DID"),
])
def test_a_broken_or_foreign_challenge_fails_the_attempt(text: str, expected: str) -> None:
    session = new_session(expected_gateway_did=None if expected == "INVALID_DID" else GATEWAY.did)
    session.connecting()
    decision = session.receive(text, 0.0)
    assert isinstance(decision, Fail) and expected in str(decision.error)


def test_an_error_instead_of_registered_is_a_refusal_with_its_code() -> None:
    session = new_session()
    session.connecting()
    session.receive(challenge(), 0.0)
    error = {"code": "AUTH_FAILED", "message": "the nonce has expired", "details": {}}
    decision = session.receive(frame(GATEWAY, "ERROR", None, error), 0.0)
    assert isinstance(decision, Refused)
    assert decision.error.code == "AUTH_FAILED" and decision.error.message == "the nonce has expired"


def test_registered_for_another_register_fails_the_attempt() -> None:
    session = new_session()
    session.connecting()
    session.receive(challenge(), 0.0)
    payload = {"did": AGENT.did, "session_id": "s-1", "agent_timeout": 300}
    decision = session.receive(frame(GATEWAY, "REGISTERED", AGENT.did, payload, "other"), 0.0)
    assert isinstance(decision, Fail) and "expected REGISTERED" in str(decision.error)


def test_a_binary_frame_fails_the_handshake_and_is_reported_afterwards() -> None:
    session = new_session()
    session.connecting()
    assert isinstance(session.receive_binary(), Fail)
    session.connect_failed()  # what the pump does with a Fail in connect()
    register(session)
    assert isinstance(session.receive_binary(), Report) and session.invalid_messages == 1


# -- registered ---------------------------------------------------------------------------------


def test_verified_messages_and_gateway_errors_are_delivered() -> None:
    session = new_session()
    register(session)
    offer = frame(PEER, "OFFER", AGENT.did, {"sdp": "v=0"})
    delivered = session.receive(offer, 1.0)
    assert isinstance(delivered, Deliver) and delivered.message.raw == offer
    assert delivered.message.sender == PEER.did and delivered.message.payload == {"sdp": "v=0"}
    error = frame(GATEWAY, "ERROR", AGENT.did,
                  {"code": "UNKNOWN_AGENT", "message": "no such agent", "details": {}}, "m-1")
    delivered = session.receive(error, 1.0)
    assert isinstance(delivered, Deliver) and delivered.message.error_code == "UNKNOWN_AGENT"
    assert delivered.message.correlation_id == "m-1"


def test_a_message_that_does_not_verify_is_reported_not_delivered() -> None:
    session = new_session()
    register(session)
    forged = json.loads(frame(PEER, "OFFER", AGENT.did, {"sdp": "v=0"}))
    forged["payload"]["sdp"] = "v=1"
    decision = session.receive(json.dumps(forged), 1.0)
    assert isinstance(decision, Report) and "INVALID_SIGNATURE" in decision.error.reason
    assert session.invalid_messages == 1


def test_a_sender_whose_did_is_not_an_ed25519_point_is_reported_as_invalid_did() -> None:
    # The 32 bytes 01 00..00 encode the identity point (small order): a well-formed did:key,
    # but not an Ed25519 public key (W3C did:key invalidPublicKey), so it is refused as a DID.
    small_order = did_from_public_key(bytes([1]) + bytes(31))
    text = json.dumps({"id": "x1", "type": "OFFER", "from": small_order, "to": AGENT.did,
                       "timestamp": "2026-11-26T10:00:00.000Z", "version": "1.0",
                       "payload": {}, "signature": "A" * 86 + "=="})
    session = new_session()
    register(session)
    decision = session.receive(text, 1.0)
    assert isinstance(decision, Report) and "INVALID_DID" in decision.error.reason


def test_keepalive_pings_after_a_third_of_agent_timeout_and_consumes_the_pong() -> None:
    session = new_session()
    register(session, now=100.0, agent_timeout=30)
    assert session.keepalive(109.9) is None
    ping = session.keepalive(110.0)
    assert isinstance(ping, Send)
    envelope = parse(ping.text)
    assert (envelope.type, envelope.recipient) == ("PING", GATEWAY.did)
    assert session.keepalive(115.0) is None  # the PING counts as sending
    pong = frame(GATEWAY, "PONG", AGENT.did, {}, envelope.id)
    assert session.receive(pong, 111.0) is None


def test_sending_resets_the_keepalive_clock() -> None:
    session = new_session()
    register(session, now=0.0, agent_timeout=30)
    assert session.keepalive_in(4.0) == 6.0
    session.send(PEER.did, "OFFER", {}, None, 9.0)
    assert session.keepalive_in(10.0) == 9.0
    assert session.keepalive(10.0) is None and isinstance(session.keepalive(19.0), Send)
    assert session.keepalive_in(19.0) == 10.0 and session.keepalive_in(40.0) == 0.0
    session.connection_lost(1001, "gateway shutting down")
    assert session.keepalive_in(40.0) is None


def test_without_keepalive_there_is_no_period() -> None:
    session = new_session(keepalive=False)
    register(session)
    assert session.keepalive_period is None and session.keepalive(1e9) is None
    assert session.keepalive_in(0.0) is None


def test_ping_answers_come_back_as_ping_answered_and_others_pongs_are_delivered() -> None:
    session = new_session()
    register(session)
    ping_id, text = session.ping(1.0)
    assert parse(text).type == "PING"
    pong = frame(GATEWAY, "PONG", AGENT.did, {}, ping_id)
    assert session.receive(pong, 1.1) == PingAnswered(ping_id)
    again = session.receive(pong, 1.2)  # a second PONG for it is just a message
    assert isinstance(again, Deliver)
    session.forget_ping("nothing")  # harmless


def test_send_when_registered_gives_the_frame_to_write_now() -> None:
    session = new_session()
    register(session)
    message_id, text = session.send(PEER.did, "OFFER", {"sdp": "v=0"}, "c-1", 1.0)
    assert text is not None
    envelope = parse(text)
    envelope.verify(AGENT.verify_key)
    assert (envelope.id, envelope.recipient, envelope.correlation_id) == (message_id, PEER.did,
                                                                          "c-1")


def test_send_before_connecting_or_after_the_end_is_refused() -> None:
    session = new_session()
    with pytest.raises(ConnectionClosed):
        session.send(PEER.did, "OFFER", {}, None, 0.0)
    register(session)
    session.connection_lost(1001, "gateway shutting down")
    with pytest.raises(ConnectionClosed):
        session.send(PEER.did, "OFFER", {}, None, 0.0)
    with pytest.raises(ConnectionClosed):
        session.ping(0.0)


def test_pacing_follows_the_announced_rate_at_ninety_percent() -> None:
    session = new_session()
    register(session, now=0.0, rate_limit={"messages_per_second": 10, "burst": 2})
    assert session.pace(0.0) == 0.0  # burst 1.8: one frame at once
    wait = session.pace(0.0)
    assert wait == pytest.approx((1.0 - 0.8) / 9.0)
    assert session.pace(0.0 + 1 / 9) == 0.0


def test_a_rate_limited_answer_makes_the_pacer_wait_the_retry_after() -> None:
    """The gateway charged more than the pacer knew (a slow frame costs extra tokens): after its
    RATE_LIMITED the next frame waits the retry_after, whatever the pacer had saved up."""
    session = new_session()
    register(session, now=0.0, rate_limit={"messages_per_second": 100, "burst": 200})
    refusal = frame(GATEWAY, "ERROR", AGENT.did, {
        "code": "RATE_LIMITED", "message": "over the limit", "details": {"retry_after": 0.5}})
    assert session.receive(refusal, 1.0) is not None  # the application still sees the ERROR
    assert session.pace(1.0) == pytest.approx(0.5 + 1 / 90)
    assert session.pace(1.5 + 1 / 90) == 0.0


def test_pacing_is_off_when_asked_or_not_announced() -> None:
    quiet = new_session(pace=False)
    register(quiet, rate_limit={"messages_per_second": 1, "burst": 1})
    assert all(quiet.pace(0.0) == 0.0 for _ in range(5))
    unannounced = new_session()
    register(unannounced, rate_limit={"messages_per_second": "fast", "burst": 1})
    assert all(unannounced.pace(0.0) == 0.0 for _ in range(5))


# -- losing the connection, reconnecting, closing ---------------------------------------------------


def test_without_reconnection_a_lost_connection_finishes_the_session() -> None:
    session = new_session()
    register(session)
    assert session.connection_lost(1001, "gateway shutting down") == Finish(
        1001, "gateway shutting down")
    assert session.state is ClientState.CLOSED and session.close_code == 1001


@pytest.mark.parametrize("code", [1000, 4400, 4401, 4409])
def test_final_close_codes_finish_even_with_reconnection(code: int) -> None:
    session = new_session(reconnect=POLICY)
    register(session)
    assert isinstance(session.connection_lost(code, "final"), Finish)


def test_a_lost_connection_reconnects_with_backoff_and_queues_sends_in_order() -> None:
    session = new_session(reconnect=POLICY, send_queue_size=2)
    register(session)
    decision = session.connection_lost(1006, None)
    assert decision == Reconnect(attempt=1, delay=1.0)
    assert session.state is ClientState.RECONNECTING and session.reconnecting
    assert not session.registered and session.session_id is None
    first, text = session.send(PEER.did, "OFFER", {"n": 1}, None, 0.0)
    second, _ = session.send(PEER.did, "OFFER", {"n": 2}, None, 0.0)
    assert text is None and len(session.outbox) == 2
    with pytest.raises(SendQueueFull):
        session.send(PEER.did, "OFFER", {"n": 3}, None, 0.0)
    assert session.attempt_failed(ConnectionRefusedError()) == Reconnect(attempt=2, delay=2.0)
    assert session.next_queued() is None  # not before registration
    done = register(session)
    assert done == Registered("s-1", reconnected=True, attempt=2)
    assert session.reconnects == 1 and not session.reconnecting
    assert session.close_code is None  # the lost connection's code went with it
    queued = []
    while (text := session.next_queued()) is not None:
        queued.append(parse(text).id)
        session.sent_queued(1.0)
    assert queued == [first, second]


def test_retry_after_from_a_refused_attempt_lengthens_the_next_wait() -> None:
    from aiconexus_gateway.client.errors import GatewayConnectionError

    session = new_session(reconnect=POLICY)
    register(session)
    session.connection_lost(1001, "gateway shutting down")
    refusal = GatewayConnectionError("503", status=503, retry_after=5.0)
    assert session.attempt_failed(refusal) == Reconnect(attempt=2, delay=5.0)


def test_a_registration_refusal_the_next_attempt_would_meet_again_is_final() -> None:
    session = new_session(reconnect=POLICY)
    register(session)
    session.connection_lost(1006, None)
    decision = session.attempt_failed(GatewayError("INVALID_DID", "bad", close_code=4400))
    assert decision == Finish(4400, "registration refused: INVALID_DID")


def test_reconnection_gives_up_after_max_attempts_with_the_lost_connection_s_code() -> None:
    session = new_session(reconnect=POLICY)
    register(session)
    session.connection_lost(1006, None)
    session.send(PEER.did, "OFFER", {}, None, 0.0)
    for _ in range(2):
        session.connecting()
        assert isinstance(session.attempt_failed(OSError()), Reconnect)
    session.connecting()
    decision = session.attempt_failed(OSError())
    assert decision == Finish(1006, "no connection after 3 attempts", unsent=1)
    assert session.state is ClientState.CLOSED and not session.outbox


def test_close_drops_the_queue_and_makes_the_next_loss_final() -> None:
    session = new_session(reconnect=POLICY)
    register(session)
    session.connection_lost(1006, None)
    session.send(PEER.did, "OFFER", {}, None, 0.0)
    assert session.close() == 1
    assert session.state is ClientState.CLOSING and not session.reconnecting
    assert isinstance(session.attempt_failed(OSError()), Finish)
    with pytest.raises(ConnectionClosed):
        session.connecting()


def test_messages_on_their_way_are_still_delivered_while_closing() -> None:
    session = new_session(reconnect=POLICY)
    register(session)
    session.close()
    assert isinstance(session.receive(frame(PEER, "OFFER", AGENT.did, {}), 1.0), Deliver)
    assert session.connection_lost(1000, "client closing") == Finish(1000, "client closing")
    assert session.receive(frame(PEER, "OFFER", AGENT.did, {}), 1.0) is None


def test_finish_is_idempotent_and_keeps_the_first_close() -> None:
    session = new_session()
    register(session)
    first = session.connection_lost(4008, "slow consumer")
    assert session.finish(1000, "later") == first == Finish(4008, "slow consumer")


def test_connecting_twice_is_refused_and_after_the_end_says_to_make_a_new_client() -> None:
    session = new_session()
    register(session)
    with pytest.raises(RuntimeError, match="already connected"):
        session.connecting()
    session.connection_lost(1000, "unregistered")
    with pytest.raises(ConnectionClosed, match="make a new GatewayClient"):
        session.connecting()


def test_a_failed_first_connect_returns_to_idle() -> None:
    session = new_session(reconnect=POLICY)
    session.connecting()
    session.connect_failed()
    assert session.state is ClientState.IDLE and not session.reconnecting

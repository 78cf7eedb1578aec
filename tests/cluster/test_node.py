"""ClusterNode's bus-independent logic (backends/base.py), driven by hand on a manual clock.

No Redis and no event loop: the tests play the bus, calling what the writer and reader tasks
would call (routed, published, handle, set_down...) and reading what the node queued.
"""

from __future__ import annotations

import json

import pytest

from aiconexus_gateway.backends.base import Answers, ClusterNode, PostOp, PresenceOp, SendOp
from aiconexus_gateway.backends.cluster import (
    ClusterSettings,
    Deliver,
    Delivered,
    Failed,
    FailReason,
    Route,
    RouteKind,
    Takeover,
)
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.errors import CloseCode
from aiconexus_gateway.hub import Hub, Peer
from aiconexus_gateway.keys import DIDKey

from .support import ALICE, BOB, MemoryConnection, frame, make_hub, registered, send_register

TIMEOUT = 2.0


class Node(ClusterNode):
    """The node without a bus: what it would publish stays in its outbox."""

    name = "test"

    def outbox(self) -> list[object]:
        ops = list(self._outbox)
        self._outbox.clear()
        return ops


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hub(clock: ManualClock) -> Hub:
    return make_hub(clock)


@pytest.fixture
def node(hub: Hub) -> Node:
    settings = ClusterSettings("redis://test", instance_id="gw-a", delivery_timeout=TIMEOUT)
    node = Node(hub, settings)
    hub.cluster = node
    node.set_up()
    return node


def join(hub: Hub, node: Node, key: DIDKey, generation: int | None = 1
         ) -> tuple[Peer, MemoryConnection, PresenceOp]:
    """Register `key`; publish its presence with `generation` (None: leave it in flight)."""
    peer, connection = send_register(hub, key)
    (op,) = node.outbox()
    assert isinstance(op, PresenceOp) and op.up and not registered(connection)
    if generation is not None:
        op.complete()
        node.published(op.record, generation)
        assert registered(connection)
    return peer, connection, op


def _send_remote(hub: Hub, node: Node, to: str = BOB.did) -> tuple[str, SendOp, MemoryConnection]:
    peer, connection, _ = join(hub, node, ALICE)
    text, message_id = frame(ALICE, to)
    hub.receive(peer, text)
    (op,) = node.outbox()
    assert isinstance(op, SendOp)
    return message_id, op, connection


def test_a_local_recipient_never_reaches_the_cluster(hub: Hub, node: Node) -> None:
    join(hub, node, ALICE)
    _, bob, _ = join(hub, node, BOB)
    hub.receive(hub.registry.get(ALICE.did).peer, frame(ALICE, BOB.did)[0])
    assert node.outbox() == []
    assert json.loads(bob.sent[-1])["type"] == "OFFER"


def test_a_frame_for_another_instance_is_queued_with_a_deadline_before_the_senders(
        hub: Hub, node: Node, clock: ManualClock) -> None:
    message_id, op, _ = _send_remote(hub, node)
    assert op.entry.message_id == message_id and op.entry.to == BOB.did
    assert op.type == "OFFER" and json.loads(op.text)["id"] == message_id
    guard = node.settings.expiry_guard
    assert op.expires_ms == int(clock.wall() * 1000 + (TIMEOUT - guard) * 1000)
    assert len(node.pending) == 1


@pytest.mark.parametrize(("route", "code", "reason"), [
    (Route(RouteKind.UNKNOWN), "UNKNOWN_AGENT", "unknown"),
    (Route(RouteKind.GONE, "gw-b"), "DELIVERY_FAILED", "instance_gone"),
])
def test_a_recipient_no_live_instance_holds_is_answered_at_once(
        hub: Hub, node: Node, route: Route, code: str, reason: str) -> None:
    message_id, op, connection = _send_remote(hub, node)
    node.routed(op, route)
    assert connection.errors() == [{"code": code, "reason": reason, "correlation_id": message_id}]
    assert len(node.pending) == 0


def test_no_answer_within_the_delivery_timeout_is_an_error_exactly_once(
        hub: Hub, node: Node, clock: ManualClock) -> None:
    message_id, op, connection = _send_remote(hub, node)
    node.routed(op, Route(RouteKind.REMOTE, "gw-b"))
    clock.advance(TIMEOUT - 0.01)
    assert node.expire() == 0
    clock.advance(0.02)
    assert node.expire() == 1
    late = Answers()
    node.handle(Delivered("gw-b", (op.entry.token,)), late, 0)
    node.handle(Failed("gw-b", (op.entry.token,), FailReason.EXPIRED), late, 0)
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "timeout",
                                    "correlation_id": message_id}]


def test_delivered_settles_a_frame_and_failed_answers_its_sender(hub: Hub, node: Node) -> None:
    _, delivered, connection = _send_remote(hub, node)
    node.routed(delivered, Route(RouteKind.REMOTE, "gw-b"))
    text, failed_id = frame(ALICE, BOB.did)
    hub.receive(hub.registry.get(ALICE.did).peer, text)
    (failed,) = node.outbox()
    assert isinstance(failed, SendOp)
    node.routed(failed, Route(RouteKind.REMOTE, "gw-b"))
    node.handle(Delivered("gw-b", (delivered.entry.token,)), Answers(), 0)
    node.handle(Failed("gw-b", (failed.entry.token,), FailReason.NOT_CONNECTED), Answers(), 0)
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "not_connected",
                                    "correlation_id": failed_id}]
    assert len(node.pending) == 0
    assert hub.metrics.registry.get_sample_value("aiconexus_cluster_outbound_total",
                                                 {"result": "delivered"}) == 1


def test_an_inbox_frame_is_written_byte_for_byte_and_answered_per_origin(
        hub: Hub, node: Node, clock: ManualClock) -> None:
    _, bob, _ = join(hub, node, BOB)
    text, _ = frame(ALICE, BOB.did, payload={"text": "héllo \U0001f600"})
    now_ms = clock.wall() * 1000
    answers = Answers()
    node.handle(Deliver("gw-b", 1, BOB.did, "OFFER", text, int(now_ms + 1000)), answers, now_ms)
    node.handle(Deliver("gw-c", 2, BOB.did, "OFFER", text, int(now_ms + 1000)), answers, now_ms)
    node.handle(Deliver("gw-b", 3, "did:key:z6Mkgone", "OFFER", text, int(now_ms + 1000)), answers,
                now_ms)
    node.handle(Deliver("gw-b", 4, BOB.did, "OFFER", "late", int(now_ms - 1)), answers, now_ms)
    assert bob.sent[-2:] == [text, text]
    node.flush_answers(answers)
    posted = {(op.instance, op.message) for op in node.outbox() if isinstance(op, PostOp)}
    assert posted == {("gw-b", Delivered("gw-a", (1,))), ("gw-c", Delivered("gw-a", (2,))),
                      ("gw-b", Failed("gw-a", (3,), FailReason.NOT_CONNECTED)),
                      ("gw-b", Failed("gw-a", (4,), FailReason.EXPIRED))}
    assert hub.registry.get(BOB.did).messages_received == 2


def test_our_own_frame_coming_back_is_answered_without_the_bus(hub: Hub, node: Node,
                                                               clock: ManualClock) -> None:
    message_id, op, connection = _send_remote(hub, node)
    node.routed(op, Route(RouteKind.REMOTE, "gw-a"))  # the presence map said "here"
    answers = Answers()
    node.handle(Deliver("gw-a", op.entry.token, BOB.did, "OFFER", op.text, op.expires_ms), answers,
                clock.wall() * 1000)
    node.flush_answers(answers)
    assert node.outbox() == []
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "not_connected",
                                    "correlation_id": message_id}]


def test_a_newer_registration_elsewhere_closes_the_session_here(hub: Hub, node: Node) -> None:
    peer, bob, _ = join(hub, node, BOB, generation=5)
    node.handle(Takeover("gw-b", BOB.did, 3), Answers(), 0)  # older: ignored
    node.handle(Takeover("gw-a", BOB.did, 9), Answers(), 0)  # our own echo: ignored
    assert bob.closed_with is None
    node.handle(Takeover("gw-b", BOB.did, 7), Answers(), 0)
    assert bob.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert bob.errors()[-1]["code"] == "SESSION_REPLACED"
    assert hub.registry.get(BOB.did) is None and peer.record is None
    hub.closed(peer, 4409, "SESSION_REPLACED")
    assert node.outbox() == []  # the presence now belongs to gw-b: nothing to withdraw


def test_a_takeover_racing_our_own_registration_waits_for_its_generation(hub: Hub,
                                                                         node: Node) -> None:
    _, bob, publish = join(hub, node, BOB, generation=None)
    node.handle(Takeover("gw-b", BOB.did, 7), Answers(), 0)
    assert bob.closed_with is None
    publish.complete()
    node.published(publish.record, 9)  # ours is newer: we stay
    assert bob.closed_with is None and registered(bob)
    _, alice, publish = join(hub, node, ALICE, generation=None)
    publish.complete()  # the hub registers the agent before the node compares generations
    node.handle(Takeover("gw-b", ALICE.did, 7), Answers(), 0)
    node.published(publish.record, 6)  # theirs is newer: we go
    assert alice.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")


def test_losing_a_presence_restore_closes_the_older_session(hub: Hub, node: Node) -> None:
    _, bob, publish = join(hub, node, BOB, generation=None)
    publish.complete()
    node.published(publish.record, -1)
    assert bob.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")


def test_while_redis_is_down_frames_fail_fast_and_queued_ones_fail_at_once(
        hub: Hub, node: Node) -> None:
    peer, alice, _ = join(hub, node, ALICE)
    queued_text, queued_id = frame(ALICE, BOB.did)
    hub.receive(peer, queued_text)
    _, carol = send_register(hub, DIDKey.from_seed(b"\x33" * 32))
    assert not registered(carol)
    node.set_down(ConnectionError("Connection refused"))
    assert node.outbox() == []
    assert registered(carol)  # registered locally; the restore after reconnecting publishes it
    _, dave = send_register(hub, DIDKey.from_seed(b"\x34" * 32))
    assert registered(dave) and node.outbox() == []
    text, fast_id = frame(ALICE, BOB.did)
    hub.receive(peer, text)
    assert node.outbox() == []
    assert [e["correlation_id"] for e in alice.errors()] == [queued_id, fast_id]
    assert {e["reason"] for e in alice.errors()} == {"unavailable"}
    assert node.redis_state() == {"state": "disconnected", "error": "Connection refused",
                                  "down_seconds": 0.0}
    assert len(node.pending) == 0


def test_when_redis_lost_its_data_every_frame_in_flight_is_answered(hub: Hub, node: Node) -> None:
    first_id, first, connection = _send_remote(hub, node)
    node.routed(first, Route(RouteKind.REMOTE, "gw-b"))
    text, second_id = frame(ALICE, BOB.did)
    hub.receive(hub.registry.get(ALICE.did).peer, text)
    node.lost_everything()
    assert [(e["reason"], e["correlation_id"]) for e in connection.errors()] == [
        ("lost", first_id), ("lost", second_id)]


def test_frames_whose_publish_outcome_is_unknown_wait_for_their_deadline(
        hub: Hub, node: Node, clock: ManualClock) -> None:
    """The connection broke with the batch in flight: the frames may sit in an inbox, so an
    early ERROR could precede a delivery. They are answered at their deadline instead."""
    message_id, op, connection = _send_remote(hub, node)
    _, carol = send_register(hub, DIDKey.from_seed(b"\x33" * 32))
    (presence,) = node.outbox()
    node.abandon([op, presence])
    assert registered(carol)  # a registration never waits for Redis to come back
    assert connection.errors() == [] and len(node.pending) == 1
    clock.advance(TIMEOUT)
    node.expire()
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "timeout",
                                    "correlation_id": message_id}]


def test_activity_is_published_only_when_it_changed(hub: Hub, node: Node, clock: ManualClock
                                                    ) -> None:
    peer, _, publish = join(hub, node, ALICE, generation=None)
    publish.complete()
    assert node.activity_changes() == []  # not published yet: nothing to update
    node.published(publish.record, 1)
    assert [r.did for r, _ in node.activity_changes()] == [ALICE.did]
    assert node.activity_changes() == []
    clock.advance(1)
    hub.receive(peer, frame(ALICE, ALICE.did)[0])
    ((_, activity),) = node.activity_changes()
    assert activity.messages_sent == 1 and activity.messages_received == 1


def test_after_withdrawing_nothing_is_published_again(hub: Hub, node: Node) -> None:
    node.withdrawn = True
    peer, alice = send_register(hub, ALICE)
    assert registered(alice)
    hub.closed(peer, 1001, "going away")
    assert node.outbox() == []


def test_an_agent_that_leaves_before_its_presence_is_written_is_withdrawn_again(
        hub: Hub, node: Node) -> None:
    peer, alice, publish = join(hub, node, ALICE, generation=None)
    hub.closed(peer, 1000, "bye")
    publish.complete()
    node.published(publish.record, 3)
    assert not registered(alice) and hub.registry.get(ALICE.did) is None
    (withdraw,) = node.outbox()
    assert isinstance(withdraw, PresenceOp) and not withdraw.up and withdraw.record is publish.record

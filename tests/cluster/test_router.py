"""ClusterRouter (backends/router.py), driven by hand on a manual clock.

No Redis and no event loop: the tests play the node's tasks, handing the router what the bus
answered (`results`, `received`, `dropped`...) and reading what it queued for the writer.
"""

from __future__ import annotations

import json

import pytest

from aiconexus_gateway.backends.bus import Op, PostOp, PresenceOp, Route, RouteKind, SendOp
from aiconexus_gateway.backends.router import ClusterRouter
from aiconexus_gateway.backends.settings import ClusterSettings
from aiconexus_gateway.backends.wire import Deliver, Delivered, Failed, FailReason, Takeover
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.errors import CloseCode, Ending
from aiconexus_gateway.hub import Hub, Peer
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.session import State

from .support import ALICE, BOB, MemoryConnection, frame, make_hub, send_register

TIMEOUT = 2.0


class NoBus:
    """The Bus as far as the router reads it; the tasks that would call it are not started."""

    description = "test"
    clock_offset_ms = 0.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hub(clock: ManualClock) -> Hub:
    return make_hub(clock)


@pytest.fixture
def router(hub: Hub) -> ClusterRouter:
    settings = ClusterSettings("redis://test", instance_id="gw-a", delivery_timeout=TIMEOUT)
    router = ClusterRouter(hub.registry, hub.actions, hub.metrics, hub.clock, settings,
                           NoBus())  # type: ignore[arg-type]
    hub.use(router, hub.views)
    router.node.set_up()
    return router


def queued(router: ClusterRouter) -> list[Op]:
    return router.node.take_queued()


def join(hub: Hub, router: ClusterRouter, key: DIDKey, generation: int | None = 1
         ) -> tuple[Peer, MemoryConnection, PresenceOp]:
    """Register `key`; publish its presence with `generation` (None: leave it in flight)."""
    peer, connection = send_register(hub, key)
    (op,) = queued(router)
    assert isinstance(op, PresenceOp) and op.up and not connection.registered_ok()
    assert peer.session.state is State.REGISTERING
    if generation is not None:
        router.results([op], [generation])
        assert connection.registered_ok() and peer.session.state is State.REGISTERED
    return peer, connection, op


def _send_remote(hub: Hub, router: ClusterRouter, to: str = BOB.did
                 ) -> tuple[str, SendOp, MemoryConnection, Peer]:
    peer, connection, _ = join(hub, router, ALICE)
    text, message_id = frame(ALICE, to)
    hub.receive(peer, text)
    (op,) = queued(router)
    assert isinstance(op, SendOp)
    return message_id, op, connection, peer


def test_a_local_recipient_never_reaches_the_cluster(hub: Hub, router: ClusterRouter) -> None:
    alice, _, _ = join(hub, router, ALICE)
    _, bob, _ = join(hub, router, BOB)
    hub.receive(alice, frame(ALICE, BOB.did)[0])
    assert queued(router) == []
    assert json.loads(bob.sent[-1])["type"] == "OFFER"


def test_a_frame_for_another_instance_is_queued_with_a_deadline_before_the_senders(
        hub: Hub, router: ClusterRouter, clock: ManualClock) -> None:
    message_id, op, _, _ = _send_remote(hub, router)
    assert op.entry.message_id == message_id and op.entry.to == BOB.did
    assert op.type == "OFFER" and json.loads(op.text)["id"] == message_id
    guard = router.settings.expiry_guard
    assert op.expires_ms == int(clock.wall() * 1000 + (TIMEOUT - guard) * 1000)
    assert len(router.pending) == 1


@pytest.mark.parametrize(("route", "code", "reason"), [
    (Route(RouteKind.UNKNOWN), "UNKNOWN_AGENT", "unknown"),
    (Route(RouteKind.GONE, "gw-b"), "DELIVERY_FAILED", "instance_gone"),
])
def test_a_recipient_no_live_instance_holds_is_answered_at_once(
        hub: Hub, router: ClusterRouter, route: Route, code: str, reason: str) -> None:
    message_id, op, connection, _ = _send_remote(hub, router)
    router.results([op], [route])
    assert connection.errors() == [{"code": code, "reason": reason, "correlation_id": message_id}]
    assert len(router.pending) == 0


def test_no_answer_within_the_delivery_timeout_is_an_error_exactly_once(
        hub: Hub, router: ClusterRouter, clock: ManualClock) -> None:
    message_id, op, connection, _ = _send_remote(hub, router)
    router.results([op], [Route(RouteKind.REMOTE, "gw-b")])
    clock.advance(TIMEOUT - 0.01)
    assert router.expire() == 0
    clock.advance(0.02)
    assert router.expire() == 1
    router.received([Delivered("gw-b", (op.entry.token,)),
                     Failed("gw-b", (op.entry.token,), FailReason.EXPIRED)], 0)
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "timeout",
                                    "correlation_id": message_id}]


def test_delivered_settles_a_frame_and_failed_answers_its_sender(hub: Hub,
                                                                 router: ClusterRouter) -> None:
    _, delivered, connection, alice = _send_remote(hub, router)
    router.results([delivered], [Route(RouteKind.REMOTE, "gw-b")])
    text, failed_id = frame(ALICE, BOB.did)
    hub.receive(alice, text)
    (failed,) = queued(router)
    assert isinstance(failed, SendOp)
    router.results([failed], [Route(RouteKind.REMOTE, "gw-b")])
    router.received([Delivered("gw-b", (delivered.entry.token,)),
                     Failed("gw-b", (failed.entry.token,), FailReason.NOT_CONNECTED)], 0)
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "not_connected",
                                    "correlation_id": failed_id}]
    assert len(router.pending) == 0
    assert hub.metrics.registry.get_sample_value("aiconexus_cluster_outbound_total",
                                                 {"result": "delivered"}) == 1


def test_an_inbox_frame_is_written_byte_for_byte_and_answered_per_origin(
        hub: Hub, router: ClusterRouter, clock: ManualClock) -> None:
    _, bob, _ = join(hub, router, BOB)
    text, _ = frame(ALICE, BOB.did, payload={"text": "héllo \U0001f600"})
    now_ms = clock.wall() * 1000
    router.received([Deliver("gw-b", 1, BOB.did, "OFFER", text, int(now_ms + 1000)),
                     Deliver("gw-c", 2, BOB.did, "OFFER", text, int(now_ms + 1000)),
                     Deliver("gw-b", 3, "did:key:z6Mkgone", "OFFER", text, int(now_ms + 1000)),
                     Deliver("gw-b", 4, BOB.did, "OFFER", "late", int(now_ms - 1))], now_ms)
    assert bob.sent[-2:] == [text, text]
    posted = {(op.instance, op.message) for op in queued(router) if isinstance(op, PostOp)}
    assert posted == {("gw-b", Delivered("gw-a", (1,))), ("gw-c", Delivered("gw-a", (2,))),
                      ("gw-b", Failed("gw-a", (3,), FailReason.NOT_CONNECTED)),
                      ("gw-b", Failed("gw-a", (4,), FailReason.EXPIRED))}
    assert hub.agent(BOB.did)["messages_received"] == 2  # type: ignore[index]


def test_our_own_frame_coming_back_is_answered_without_the_bus(
        hub: Hub, router: ClusterRouter, clock: ManualClock) -> None:
    message_id, op, connection, _ = _send_remote(hub, router)
    router.results([op], [Route(RouteKind.REMOTE, "gw-a")])  # the presence map said "here"
    router.received([Deliver("gw-a", op.entry.token, BOB.did, "OFFER", op.text, op.expires_ms)],
                    clock.wall() * 1000)
    assert queued(router) == []
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "not_connected",
                                    "correlation_id": message_id}]


def test_a_newer_registration_elsewhere_closes_the_session_here(hub: Hub,
                                                                router: ClusterRouter) -> None:
    peer, bob, _ = join(hub, router, BOB, generation=5)
    router.received([Takeover("gw-b", BOB.did, 3),  # older: ignored
                     Takeover("gw-a", BOB.did, 9)], 0)  # our own echo: ignored
    assert bob.closed_with is None
    router.received([Takeover("gw-b", BOB.did, 7)], 0)
    assert bob.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert bob.errors()[-1]["code"] == "SESSION_REPLACED"
    assert hub.registry.get(BOB.did) is None and peer.session.ending is Ending.SESSION_REPLACED
    hub.closed(peer, 4409, "SESSION_REPLACED")
    assert queued(router) == []  # the presence now belongs to gw-b: nothing to withdraw


def test_a_takeover_racing_our_own_registration_waits_for_its_generation(
        hub: Hub, router: ClusterRouter) -> None:
    """Issue 11: the same key registering on two instances within milliseconds kept two live
    sessions, because a takeover that arrived while ours was being published was dropped."""
    _, bob, publish = join(hub, router, BOB, generation=None)
    router.received([Takeover("gw-b", BOB.did, 7)], 0)
    assert bob.closed_with is None
    router.results([publish], [9])  # ours is newer: we stay
    assert bob.closed_with is None and bob.registered_ok()
    _, alice, publish = join(hub, router, ALICE, generation=None)
    router.received([Takeover("gw-b", ALICE.did, 7)], 0)
    router.results([publish], [6])  # theirs is newer: we go, once REGISTERED was said
    assert alice.registered_ok()
    assert alice.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert hub.registry.get(ALICE.did) is None


def test_losing_a_presence_restore_closes_the_older_session(hub: Hub,
                                                            router: ClusterRouter) -> None:
    peer, bob, _ = join(hub, router, BOB)
    router.restored([peer], [-1])
    assert bob.closed_with == (CloseCode.SESSION_REPLACED, "SESSION_REPLACED")


def test_while_redis_is_down_frames_fail_fast_and_queued_ones_fail_at_once(
        hub: Hub, router: ClusterRouter) -> None:
    peer, alice, _ = join(hub, router, ALICE)
    queued_text, queued_id = frame(ALICE, BOB.did)
    hub.receive(peer, queued_text)
    _, carol = send_register(hub, DIDKey.from_seed(b"\x33" * 32))
    assert not carol.registered_ok()
    router.node.set_down(ConnectionError("Connection refused"))
    assert queued(router) == []
    assert carol.registered_ok()  # registered locally; the restore after reconnecting publishes it
    _, dave = send_register(hub, DIDKey.from_seed(b"\x34" * 32))
    assert dave.registered_ok() and queued(router) == []
    text, fast_id = frame(ALICE, BOB.did)
    hub.receive(peer, text)
    assert queued(router) == []
    assert [e["correlation_id"] for e in alice.errors()] == [queued_id, fast_id]
    assert {e["reason"] for e in alice.errors()} == {"unavailable"}
    assert router.node.state() == {"state": "disconnected", "error": "Connection refused",
                                   "down_seconds": 0.0}
    assert len(router.pending) == 0


def test_when_redis_lost_its_data_every_frame_in_flight_is_answered(hub: Hub,
                                                                    router: ClusterRouter) -> None:
    first_id, first, connection, alice = _send_remote(hub, router)
    router.results([first], [Route(RouteKind.REMOTE, "gw-b")])
    text, second_id = frame(ALICE, BOB.did)
    hub.receive(alice, text)
    router.lost_everything()
    assert [(e["reason"], e["correlation_id"]) for e in connection.errors()] == [
        ("lost", first_id), ("lost", second_id)]


def test_frames_whose_publish_outcome_is_unknown_wait_for_their_deadline(
        hub: Hub, router: ClusterRouter, clock: ManualClock) -> None:
    """The connection broke with the batch in flight: the frames may sit in an inbox, so an
    early ERROR could precede a delivery. They are answered at their deadline instead."""
    message_id, op, connection, _ = _send_remote(hub, router)
    _, carol = send_register(hub, DIDKey.from_seed(b"\x33" * 32))
    (presence,) = queued(router)
    router.dropped([op, presence], sent=True)
    assert carol.registered_ok()  # a registration never waits for Redis to come back
    assert connection.errors() == [] and len(router.pending) == 1
    clock.advance(TIMEOUT)
    router.expire()
    assert connection.errors() == [{"code": "DELIVERY_FAILED", "reason": "timeout",
                                    "correlation_id": message_id}]


def test_activity_is_published_only_when_it_changed(hub: Hub, router: ClusterRouter,
                                                    clock: ManualClock) -> None:
    peer, _, publish = join(hub, router, ALICE, generation=None)
    assert router.activity() == []  # not published yet: nothing to update
    router.results([publish], [1])
    assert router.activity() == []  # it has not moved since it registered: the cluster's default
    clock.advance(1)
    hub.receive(peer, frame(ALICE, ALICE.did)[0])
    ((_, _, activity),) = router.activity()
    assert activity.messages_sent == 1 and activity.messages_received == 1
    assert router.activity() == []  # published once


def test_after_withdrawing_nothing_is_published_again(hub: Hub, router: ClusterRouter) -> None:
    router.node.withdrawn = True
    peer, alice = send_register(hub, ALICE)
    assert alice.registered_ok()
    hub.closed(peer, 1001, "going away")
    assert queued(router) == []


def test_an_agent_that_leaves_before_its_presence_is_written_is_withdrawn_again(
        hub: Hub, router: ClusterRouter) -> None:
    peer, alice, publish = join(hub, router, ALICE, generation=None)
    hub.closed(peer, 1000, "bye")
    router.results([publish], [3])
    assert not alice.registered_ok() and hub.registry.get(ALICE.did) is None
    (withdraw,) = queued(router)
    assert isinstance(withdraw, PresenceOp) and not withdraw.up
    assert withdraw.presence.session_id == peer.session.session_id

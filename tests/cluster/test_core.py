"""The pure cluster modules: wire messages, presence, the routing script's answers, pending
deliveries, settings and key names."""

from __future__ import annotations

from typing import Any

import pytest

from aiconexus_gateway.backends.bus import Route, RouteKind
from aiconexus_gateway.backends.presence import Activity, Presence, presence_view
from aiconexus_gateway.backends.redis_backend import route_from_script
from aiconexus_gateway.backends.settings import (
    ClusterSettings,
    Keys,
    generate_instance_id,
    redact_url,
)
from aiconexus_gateway.backends.state import PendingDeliveries
from aiconexus_gateway.backends.wire import (
    ClusterMessage,
    ClusterMessageError,
    Deliver,
    Delivered,
    Failed,
    FailReason,
    Takeover,
    decode,
    delivery_error,
    encode,
)
from aiconexus_gateway.errors import ErrorCode

ANYONE: Any = object()  # a sender, as the bookkeeping sees it: opaque
TEXT = '{"id":"m1","payload":{"text":"héllo \\u00e9 \U0001f600 \\"quoted\\""}}'


@pytest.mark.parametrize("message", [
    Deliver("gw-a", 7, "did:key:z6Mkb", "OFFER", TEXT, 1_790_000_000_123),
    Delivered("gw-b", (1, 2, 3)),
    Delivered("gw-b", ()),
    Failed("gw-b", (9,), FailReason.NOT_CONNECTED),
    Takeover("gw-c", "did:key:z6Mkb", 42),
])
def test_every_cluster_message_survives_encode_then_decode(message: ClusterMessage) -> None:
    assert decode(encode(message)) == message


def test_a_routed_frame_travels_as_its_exact_utf8_bytes() -> None:
    fields = encode(Deliver("gw-a", 1, "did:key:z6Mkb", "OFFER", TEXT, 0))
    assert fields[b"m"] == TEXT.encode("utf-8")
    decoded = decode(fields)
    assert isinstance(decoded, Deliver) and decoded.text == TEXT


@pytest.mark.parametrize("fields", [
    {},
    {b"k": b"Z", b"o": b"gw"},
    {b"k": b"D", b"o": b"gw"},
    {b"k": b"A", b"o": b"gw", b"t": b"1,x"},
    {b"k": b"F", b"o": b"gw", b"t": b"1", b"r": b"bogus"},
    {b"k": b"D", b"o": b"gw", b"t": b"1", b"d": b"did", b"y": b"OFFER", b"x": b"1", b"m": b"\xff"},
])
def test_unreadable_entries_are_refused_with_a_cluster_message_error(fields: dict[bytes, bytes]
                                                                      ) -> None:
    with pytest.raises(ClusterMessageError):
        decode(fields)


@pytest.mark.parametrize(("answer", "expected"), [
    (b"", Route(RouteKind.UNKNOWN)),
    (None, Route(RouteKind.UNKNOWN)),
    (b"!gw-b", Route(RouteKind.GONE, "gw-b")),
    (b"gw-b", Route(RouteKind.REMOTE, "gw-b")),
])
def test_the_routing_scripts_answers_are_remote_gone_or_unknown(answer: bytes | None, expected: Route
                                                           ) -> None:
    assert route_from_script(answer) == expected


def test_only_an_unknown_recipient_is_unknown_agent_every_other_failure_is_delivery_failed() -> None:
    for reason in FailReason:
        error = delivery_error(reason, to="did:key:z6Mkb", message_id="m-1")
        expected = ErrorCode.UNKNOWN_AGENT if reason is FailReason.UNKNOWN else ErrorCode.DELIVERY_FAILED
        assert error.code is expected
        assert error.correlation_id == "m-1"
        assert error.details == {"to": "did:key:z6Mkb", "reason": reason.value}
        assert error.message


def test_pending_deliveries_expire_oldest_first_and_only_once() -> None:
    pending = PendingDeliveries(timeout=2.0)
    first = pending.add(message_id="m1", to="b", sender=ANYONE, now=10.0)
    second = pending.add(message_id="m2", to="b", sender=ANYONE, now=11.0)
    assert first.token != second.token and len(pending) == 2
    assert pending.expired(11.9) == []
    assert pending.expired(12.0) == [first]
    assert pending.resolve(first.token) is None  # already answered by the timeout
    assert pending.resolve(second.token) is second
    assert pending.expired(100.0) == [] and len(pending) == 0


def test_pending_deliveries_can_all_be_failed_at_once() -> None:
    pending = PendingDeliveries(timeout=5.0)
    first = pending.add(message_id="m1", to="x", sender=ANYONE, now=0.0)
    second = pending.add(message_id="m2", to="y", sender=ANYONE, now=1.0)
    assert pending.clear() == [first, second]
    assert len(pending) == 0 and pending.expired(100.0) == []


def test_presence_and_activity_round_trip_and_make_the_agents_view() -> None:
    presence = Presence("did:key:z6Mkb", "gw-b", "s-1", 1_790_000_000.25, {"name": "bob", "n": 1})
    assert Presence.decode("did:key:z6Mkb", presence.encode()) == presence
    activity = Activity(3, 4, 1_790_000_005.5)
    assert Activity.decode(activity.encode()) == activity
    assert Activity.decode(None) == Activity() == Activity.decode(b"not json")
    view = presence_view(presence, activity)
    assert view == {"did": "did:key:z6Mkb", "connected_at": "2026-09-21T14:13:20.250Z",
                    "last_activity": "2026-09-21T14:13:25.500Z", "messages_sent": 3,
                    "messages_received": 4, "metadata": {"name": "bob", "n": 1}, "instance": "gw-b"}
    assert presence_view(presence, Activity())["last_activity"] == view["connected_at"]


def test_redis_passwords_never_reach_logs_or_health() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("rediss://user:s3cret@[::1]:6380") == "rediss://user:***@[::1]:6380"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_generated_instance_ids_are_readable_and_valid() -> None:
    assert generate_instance_id("gateway-7d9f-abc.cluster.local", "a1b2c3") == (
        "gateway-7d9f-abc.cluster.local-a1b2c3")
    assert generate_instance_id("???", "a1b2c3") == "gateway-a1b2c3"
    ClusterSettings("redis://x", instance_id=generate_instance_id("h" * 200, "a1b2c3"))


@pytest.mark.parametrize("changes", [
    {"prefix": "has space"}, {"prefix": ""}, {"instance_id": "a/b"},
    {"heartbeat_interval": 2.0, "heartbeat_ttl": 2.0},
])
def test_cluster_settings_refuse_bad_names_and_a_ttl_not_above_the_interval(
        changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClusterSettings("redis://x", **changes)


def test_every_key_lives_under_the_prefix() -> None:
    keys = Keys("tenant-1")
    names = [keys.route, keys.session, keys.agents, keys.activity, keys.order, keys.instances,
             keys.generation, keys.epoch, keys.members("gw-a"), keys.heartbeat("gw-a"),
             keys.inbox("gw-a")]
    assert all(name.startswith("tenant-1:") for name in names)
    assert len(set(names)) == len(names)


def test_a_receiver_stops_delivering_before_the_sender_gives_up() -> None:
    settings = ClusterSettings("redis://x", delivery_timeout=5.0)
    assert 0 < settings.expiry_guard <= 0.25
    assert ClusterSettings("redis://x", delivery_timeout=0.4).expiry_guard == pytest.approx(0.1)

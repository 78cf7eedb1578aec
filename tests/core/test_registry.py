"""The registry: one record per DID, registration order, removal only of the current record."""

from __future__ import annotations

from aiconexus_gateway.registry import AgentRecord, Registry


def _record(did: str, at: float = 0.0) -> AgentRecord:
    return AgentRecord(did, peer=object(), session_id=f"s-{did}-{at}", connected_at=at,
                       metadata={"name": did})


def test_new_record_starts_with_zero_counters_and_activity_at_connection() -> None:
    record = _record("a", 5.0)
    assert (record.messages_sent, record.messages_received) == (0, 0)
    assert record.last_activity == record.connected_at == 5.0


def test_add_get_contains_len_and_iteration_in_registration_order() -> None:
    registry = Registry()
    records = [_record(d) for d in "cab"]
    for record in records:
        assert registry.add(record) is None
    assert len(registry) == 3
    assert "a" in registry and "z" not in registry
    assert registry.get("a") is records[1] and registry.get("z") is None
    assert list(registry) == records


def test_iteration_is_a_snapshot_that_survives_removal() -> None:
    registry = Registry()
    for did in "abc":
        registry.add(_record(did))
    for record in registry:
        registry.remove(record)
    assert len(registry) == 0


def test_adding_a_did_again_replaces_and_returns_the_old_record_and_moves_it_last() -> None:
    registry = Registry()
    old, other, new = _record("a", 1), _record("b", 2), _record("a", 3)
    registry.add(old)
    registry.add(other)
    assert registry.add(new) is old
    assert registry.get("a") is new
    assert list(registry) == [other, new]


def test_removing_a_replaced_record_leaves_the_new_one() -> None:
    registry = Registry()
    old, new = _record("a", 1), _record("a", 2)
    registry.add(old)
    registry.add(new)
    assert registry.remove(old) is False
    assert registry.get("a") is new
    assert registry.remove(new) is True
    assert registry.remove(new) is False
    assert len(registry) == 0


def test_page_slices_in_registration_order() -> None:
    registry = Registry()
    records = [_record(str(i)) for i in range(5)]
    for record in records:
        registry.add(record)
    assert registry.page(2, 0) == records[:2]
    assert registry.page(2, 3) == records[3:]
    assert registry.page(10, 5) == []
    assert registry.page(0, 0) == []

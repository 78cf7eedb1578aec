"""The shared wait: it returns as soon as the condition holds, and a timeout says what was awaited."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waiting import wait_until


@pytest.mark.gen_test
async def test_a_plain_condition_is_polled_until_it_holds() -> None:
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3
    await wait_until(third_time, 5, "the third call", interval=0.001)
    assert len(calls) == 3


@pytest.mark.gen_test
async def test_an_async_condition_is_awaited() -> None:
    async def ready() -> bool:
        return True
    assert await wait_until(ready, 5, "ready") < 1


@pytest.mark.gen_test
async def test_an_event_is_awaited_without_polling() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)
    await wait_until(event, 5, "the event")
    assert event.is_set()


@pytest.mark.gen_test
async def test_a_timeout_names_what_was_awaited_and_the_state_then() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for: 3 open"):
        await wait_until(lambda: False, 0.05, lambda: f"{3} open")
    with pytest.raises(AssertionError, match="waiting for: the event"):
        await wait_until(asyncio.Event(), 0.05, "the event")

"""A link closed while it gathers its ICE candidates leaves no UDP socket open.

aioice binds a host candidate's socket before it records it among the sockets its close() closes,
so a close that overtook a gathering used to leak them (found as a ResourceWarning for a UDP
transport bound to this host's address, in a later test). client/peer/webrtc.py lets the
gathering end, then closes.
"""

from __future__ import annotations

import asyncio

import psutil
import pytest

from aiconexus_gateway.client.peer.webrtc import WebRTCLink, _deferred_closes


def udp_sockets() -> int:
    return len(psutil.Process().net_connections(kind="udp"))


def link() -> WebRTCLink:
    def nothing(*_: object) -> None:
        return None

    return WebRTCLink("leak", [], relay_only=False, on_open=nothing, on_failed=nothing,
                      on_message=nothing, on_close=nothing)


async def settle() -> None:
    """Until every deferred close has run."""
    while _deferred_closes:
        await asyncio.wait(list(_deferred_closes), timeout=5)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5, 8])
async def test_a_link_closed_while_gathering_leaves_no_socket(steps: int) -> None:
    before = udp_sockets()
    subject = link()
    offering = asyncio.ensure_future(subject.offer())
    for _ in range(steps):  # somewhere inside the gathering
        await asyncio.sleep(0)
    await subject.close()
    offering.cancel()  # as the manager cancels the channel's worker
    await asyncio.wait([offering])
    await settle()
    assert udp_sockets() == before


@pytest.mark.gen_test(timeout=30)
async def test_a_link_closed_after_its_offer_leaves_no_socket() -> None:
    before = udp_sockets()
    subject = link()
    _, candidates = await subject.offer()
    assert candidates  # it did bind sockets
    assert udp_sockets() > before
    await subject.close()
    await settle()
    assert udp_sockets() == before

"""An agent's mailbox in the monitor: parsed from /agents, shown on the detail screen."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway.client import DIDKey
from aiconexus_gateway.server.app import Gateway
from monitor.changes import observe
from monitor.contract import Mailbox, MalformedResponse, parse_agent, parse_agent_page
from monitor.view import agent_details
from tests.conftest import connect_agent, read_json
from tests.e2e.wire import registered

from .builders import DID_A, agent, agent_json, snapshot


def test_the_mailbox_member_is_parsed_when_present() -> None:
    parsed = parse_agent(agent_json(mailbox={"enabled": True, "blocked": ["did:key:z6Mkx"],
                                             "messages": 3, "bytes": 1234, "receipts": 1}))
    assert parsed.mailbox == Mailbox(messages=3, bytes=1234, receipts=1, enabled=True, blocked=1)
    assert parse_agent(agent_json()).mailbox is None
    with pytest.raises(MalformedResponse, match="mailbox"):
        parse_agent(agent_json(mailbox={"messages": "3", "bytes": 0, "receipts": 0}))


def test_details_show_the_mailbox_depth() -> None:
    waiting = dataclasses.replace(agent(DID_A, name="alice"),
                                  mailbox=Mailbox(messages=1200, bytes=45678, receipts=1))
    observed, _ = observe(None, snapshot(60, waiting), history=30)
    lines = agent_details(DID_A, observed, stale=False).splitlines()
    assert "mailbox           1,200 waiting (45,678 bytes), 1 receipt" in lines
    refusing = dataclasses.replace(waiting, mailbox=Mailbox(0, 0, 0, enabled=False))
    observed, _ = observe(None, snapshot(60, refusing), history=30)
    assert "refuses stored messages" in agent_details(DID_A, observed, stale=False)
    observed, _ = observe(None, snapshot(60, agent(DID_A)), history=30)
    assert "mailbox" not in agent_details(DID_A, observed, stale=False)


@pytest.mark.gen_test(timeout=30)
async def test_the_real_gateways_mailbox_depth_passes_the_monitors_parser(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    await alice.send(bob_key.did, "INTENT", {"x": 1}, ttl=60)
    bob_ws, _ = await registered(gateway, bob_key)  # connected, reads it, never acknowledges it
    assert await read_json(bob_ws) is not None
    response = await AsyncHTTPClient().fetch(f"{gateway.http_url}/agents")
    by_did = {a.did: a for a in parse_agent_page(json.loads(response.body)).agents}
    bob = by_did[bob_key.did].mailbox
    assert bob is not None and (bob.messages, bob.receipts) == (1, 0) and bob.bytes > 100
    assert by_did[alice.did].mailbox is None
    bob_ws.close()
    await alice.close()

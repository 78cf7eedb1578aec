"""Agent cards in the monitor: parsed from /agents, shown in the details, filtered by `cap:`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway.server.app import Gateway
from monitor.changes import observe
from monitor.contract import MalformedResponse, parse_agent, parse_agent_page
from monitor.selection import filter_agents
from monitor.view import agent_details
from tests.conftest import connect_agent

from .builders import DID_A, DID_B, DID_C, agent, agent_json, snapshot

CARD = {"name": "Translator", "capabilities": ["translate", "llm:chat"]}


def test_a_card_gives_the_name_and_capabilities() -> None:
    parsed = parse_agent(agent_json(card=CARD, unlisted=True))
    assert (parsed.name, parsed.capabilities, parsed.unlisted) == (
        "Translator", ("translate", "llm:chat"), True)
    plain = parse_agent(agent_json(metadata={"name": "bob", "capabilities": ["x"]}))
    assert (plain.name, plain.capabilities, plain.card) == ("bob", ("x",), None)


def test_a_card_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="card is not a JSON object"):
        parse_agent(agent_json(card=["x"]))


def test_cap_filters_by_capability_ignoring_case() -> None:
    agents = [dataclasses.replace(agent(DID_A), card=CARD),
              dataclasses.replace(agent(DID_B), card={"name": "b", "capabilities": ["sum"]}),
              agent(DID_C)]
    assert [a.did for a in filter_agents(agents, "cap:Translate")] == [DID_A]
    assert [a.did for a in filter_agents(agents, " cap: sum ")] == [DID_B]
    assert filter_agents(agents, "cap:nothing") == []


def test_details_show_the_capabilities_and_the_card() -> None:
    with_card = dataclasses.replace(agent(DID_A, name="alice"), card=CARD)
    observed, _ = observe(None, snapshot(60, with_card), history=30)
    details = agent_details(DID_A, observed, stale=False)
    assert "capabilities      translate, llm:chat" in details.splitlines()
    assert "card (signed by the agent)" in details and '"Translator"' in details


@pytest.mark.gen_test
async def test_the_real_gateways_cards_pass_the_monitors_parser(gateway: Gateway) -> None:
    client = await connect_agent(gateway, card=CARD)
    hidden = await connect_agent(gateway, card={"name": "h"}, unlisted=True)
    response = await AsyncHTTPClient().fetch(f"{gateway.http_url}/agents")
    page = parse_agent_page(json.loads(response.body))
    by_did = {a.did: a for a in page.agents}
    assert by_did[client.did].capabilities == ("translate", "llm:chat")
    assert by_did[hidden.did].unlisted and by_did[hidden.did].name == "h"
    await client.close()
    await hidden.close()

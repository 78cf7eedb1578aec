"""GatewayAPI: every way a poll can fail becomes one GatewayError with a short reason."""

from __future__ import annotations

import httpx
import pytest

from aiconexus_gateway.server.app import Gateway
from monitor.api import BadAnswer, GatewayAPI, Unauthorized, Unreachable
from monitor.credentials import AdminToken
from tests.support.process import free_port

from .fake_gateway import GATEWAY_DID, FakeGateway, fake_did


@pytest.mark.gen_test
async def test_refused_connection_is_unreachable_with_a_plain_reason() -> None:
    async with GatewayAPI(f"http://127.0.0.1:{free_port()}") as api:
        with pytest.raises(Unreachable) as caught:
            await api.snapshot()
    assert caught.value.reason == "connection refused"
    assert caught.value.state == "unreachable"


@pytest.mark.gen_test
async def test_no_answer_in_time_is_unreachable(fake: FakeGateway, fake_url: str) -> None:
    fake.mode = "slow"
    async with GatewayAPI(fake_url, timeout=0.2) as api:
        with pytest.raises(Unreachable, match=r"no answer within 0\.2 s"):
            await api.health()
    fake.release.set()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("malformed", "malformed JSON from /health"),
        ("html", "malformed JSON from /health"),
        ("shape", "unexpected /health: health.status is not a string: None"),
        ("http500", "HTTP 500 from /health: INTERNAL"),
    ],
)
@pytest.mark.gen_test
async def test_bad_answers_say_what_was_wrong(
    fake: FakeGateway, fake_url: str, mode: str, reason: str
) -> None:
    fake.mode = mode
    async with GatewayAPI(fake_url) as api:
        with pytest.raises(BadAnswer) as caught:
            await api.snapshot()
    assert caught.value.reason == reason
    assert caught.value.state == "error"


@pytest.mark.gen_test
async def test_a_404_names_the_whole_url_and_asks_whether_it_is_the_gateway(fake_url: str) -> None:
    # a web server that is not the gateway (here: a path prefix it does not serve) answers 404
    async with GatewayAPI(fake_url + "/nothing") as api:
        with pytest.raises(BadAnswer) as caught:
            await api.health()
    assert caught.value.reason == (
        f"HTTP 404 from {fake_url}/nothing/health; "
        f"is {fake_url}/nothing the gateway's HTTP address?"
    )


@pytest.mark.parametrize("endpoint", ["/health", "/ws", "/agents"])
@pytest.mark.gen_test
async def test_a_real_gateway_is_read_when_given_one_of_its_endpoints(
    gateway: Gateway, endpoint: str
) -> None:
    async with GatewayAPI(gateway.http_url + endpoint) as api:
        assert api.base_url == gateway.http_url
        snapshot = await api.snapshot()
    assert snapshot.health.gateway_did == gateway.did


@pytest.mark.gen_test
async def test_draining_gateway_answers_503_and_that_is_a_state_not_an_error(
    fake: FakeGateway, fake_url: str
) -> None:
    fake.mode = "draining"
    async with GatewayAPI(fake_url) as api:
        health = await api.health()
    assert health.status == "draining"
    assert health.gateway_did == GATEWAY_DID


@pytest.mark.gen_test
async def test_agents_are_fetched_in_pages_up_to_the_maximum(
    fake: FakeGateway, fake_url: str
) -> None:
    fake.agent_count = 10_000
    async with GatewayAPI(fake_url, page_size=100, max_agents=250) as api:
        snapshot = await api.snapshot()
    assert list(snapshot.agents) == [fake_did(i) for i in range(250)]
    assert snapshot.total == 10_000 and snapshot.partial
    assert fake.requests == [
        "/health",
        "/agents?limit=100&offset=0",
        "/agents?limit=100&offset=100",
        "/agents?limit=50&offset=200",
    ]


@pytest.mark.gen_test
async def test_paging_stops_at_the_last_agent(fake: FakeGateway, fake_url: str) -> None:
    fake.agent_count = 150
    async with GatewayAPI(fake_url, page_size=100, max_agents=1000) as api:
        snapshot = await api.snapshot()
    assert len(snapshot.agents) == snapshot.total == 150
    assert not snapshot.partial
    assert len([r for r in fake.requests if r.startswith("/agents")]) == 2


@pytest.mark.gen_test
async def test_empty_gateway_costs_one_agents_request(fake: FakeGateway, fake_url: str) -> None:
    fake.agent_count = 0
    async with GatewayAPI(fake_url) as api:
        snapshot = await api.snapshot()
    assert snapshot.agents == {} and snapshot.total == 0
    assert fake.requests == ["/health", "/agents?limit=100&offset=0"]


@pytest.mark.gen_test
async def test_websocket_address_is_turned_into_the_http_base(fake_url: str) -> None:
    ws_url = fake_url.replace("http://", "ws://") + "/ws"
    async with GatewayAPI(ws_url) as api:
        assert api.base_url == fake_url
        assert (await api.health()).status == "healthy"


@pytest.mark.gen_test
async def test_a_lent_http_client_is_left_open(fake_url: str) -> None:
    async with httpx.AsyncClient() as client:
        async with GatewayAPI(fake_url, client=client) as api:
            await api.health()
        assert not client.is_closed


def test_nonsense_paging_options_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GatewayAPI("http://127.0.0.1:8000", max_agents=0)


TOKEN = "s3cret-admin-token-0123456789"


@pytest.mark.gateway_config(admin_token=TOKEN)
@pytest.mark.gen_test
async def test_the_admin_token_is_sent_as_a_bearer_token(gateway: Gateway) -> None:
    async with GatewayAPI(gateway.http_url, token=AdminToken(TOKEN)) as api:
        snapshot = await api.snapshot()
    assert snapshot.health.gateway_did == gateway.did


@pytest.mark.gateway_config(admin_token=TOKEN)
@pytest.mark.gen_test
async def test_a_gateway_that_wants_a_token_says_so_when_none_was_sent(gateway: Gateway) -> None:
    async with GatewayAPI(gateway.http_url) as api:
        with pytest.raises(Unauthorized) as caught:
            await api.snapshot()
    assert caught.value.state == "unauthorized"
    assert caught.value.reason == (
        "the gateway requires its admin token, none was sent "
        "(set ADMIN_TOKEN or use --token-file)"
    )


@pytest.mark.gateway_config(admin_token=TOKEN)
@pytest.mark.gen_test
async def test_a_wrong_token_is_said_to_be_refused_without_showing_it(gateway: Gateway) -> None:
    wrong = "wrong-admin-token-0123456789"
    async with GatewayAPI(gateway.http_url, token=AdminToken(wrong)) as api:
        with pytest.raises(Unauthorized) as caught:
            await api.snapshot()
        assert wrong not in repr(api.__dict__)
    assert caught.value.reason == (
        "the gateway refused the admin token sent (check ADMIN_TOKEN or --token-file)"
    )

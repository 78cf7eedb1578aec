"""The pure limit policies (ratelimit.py, admission.py, access.py), the SDK backoff and the
configuration options."""

from __future__ import annotations

import pytest

from aiconexus_gateway.access import bearer_token_ok, origin_allowed, parse_origins
from aiconexus_gateway.admission import Admission, AdmissionSettings, retry_after_header
from aiconexus_gateway.client.reconnect import ReconnectPolicy, backoff_delay
from aiconexus_gateway.config import Config, ConfigError, load
from aiconexus_gateway.ratelimit import ABUSE_WINDOW, COST_UNIT, RateLimiter, TokenBucket, WorkBudget

# -- token bucket ------------------------------------------------------------------------------


def test_bucket_grants_the_burst_at_once_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(0.0) == pytest.approx(0.1)  # one token every 1/10 s
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) > 0


def test_bucket_saves_at_most_the_burst_while_idle() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    granted = sum(1 for _ in range(10) if bucket.take(1000.0) == 0.0)
    assert granted == 3


def test_bucket_retry_hint_is_the_time_until_the_next_token() -> None:
    bucket = TokenBucket(rate=4, burst=1, now=0.0)
    assert bucket.take(0.0) == 0.0
    hint = bucket.take(0.05)
    assert hint == pytest.approx(0.25 - 0.05)
    assert bucket.take(0.05 + hint) == 0.0


def test_bucket_ignores_a_clock_that_goes_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    bucket.take(10.0)
    assert bucket.take(5.0) > 0  # no tokens created out of negative time
    assert bucket.tokens >= 0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bucket_refuses_meaningless_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, 0.0)


# -- the abuse rule (4429) ---------------------------------------------------------------------


def test_a_client_that_ignores_rate_limited_is_abusive_after_burst_refusals() -> None:
    limiter = RateLimiter(rate=10, burst=20, now=0.0)
    refusals = 0
    for _ in range(1000):
        if limiter.take(0.0):
            refusals += 1
            if limiter.refused(0.0):
                break
    assert refusals == 21  # more than `burst` refused frames in a moment


def test_a_client_slightly_over_the_limit_is_throttled_not_closed() -> None:
    """10% over the rate for a minute: some frames refused, never abusive."""
    limiter = RateLimiter(rate=100, burst=200, now=0.0)
    now, refused, abusive = 0.0, 0, False
    while now < 60:
        now += 1 / 110
        if limiter.take(now):
            refused += 1
            abusive |= limiter.refused(now)
    assert refused > 0 and not abusive


def test_refusals_leak_away_over_the_abuse_window() -> None:
    limiter = RateLimiter(rate=10, burst=10, now=0.0)
    for _ in range(10):
        assert not limiter.refused(0.0)
    assert not limiter.refused(ABUSE_WINDOW)  # the debt leaked away meanwhile
    for _ in range(10):
        limiter.refused(ABUSE_WINDOW)
    assert limiter.refused(ABUSE_WINDOW)


# -- admission ---------------------------------------------------------------------------------


def test_admission_refuses_per_ip_with_429_and_total_with_503() -> None:
    admission = Admission(AdmissionSettings(max_connections=3, max_connections_per_ip=2), now=0.0)
    assert admission.admit("10.0.0.1", 0.0) is None
    assert admission.admit("10.0.0.1", 0.0) is None
    per_ip = admission.admit("10.0.0.1", 0.0)
    assert per_ip is not None and per_ip.status == 429 and per_ip.code == "TOO_MANY_CONNECTIONS"
    assert admission.admit("10.0.0.2", 0.0) is None
    full = admission.admit("10.0.0.3", 0.0)
    assert full is not None and full.status == 503 and full.code == "GATEWAY_FULL"
    assert admission.total == 3 and admission.per_ip == {"10.0.0.1": 2, "10.0.0.2": 1}


def test_admission_release_frees_the_slot_and_forgets_the_address() -> None:
    admission = Admission(AdmissionSettings(max_connections_per_ip=1), now=0.0)
    assert admission.admit("a", 0.0) is None
    assert admission.admit("a", 0.0) is not None
    admission.release("a")
    assert admission.per_ip == {} and admission.total == 0
    assert admission.admit("a", 0.0) is None


def test_connection_rate_cap_refuses_with_503_and_a_retry_hint() -> None:
    admission = Admission(AdmissionSettings(connection_rate=10, connection_burst=3), now=0.0)
    results = [admission.admit(f"ip{i}", 0.0) for i in range(4)]
    assert results[:3] == [None, None, None]
    refusal = results[3]
    assert refusal is not None and refusal.status == 503 and refusal.code == "CONNECTION_RATE_LIMITED"
    assert refusal.retry_after == pytest.approx(0.1)
    assert retry_after_header(refusal.retry_after) == "1"
    assert admission.admit("ip9", 0.1) is None


def test_refused_connections_take_no_rate_token_and_no_slot() -> None:
    admission = Admission(AdmissionSettings(max_connections_per_ip=1, connection_rate=1,
                                            connection_burst=2), now=0.0)
    assert admission.admit("a", 0.0) is None
    for _ in range(5):
        assert admission.admit("a", 0.0) is not None  # per-IP refusals
    assert admission.admit("b", 0.0) is None  # the second token is still there
    assert admission.total == 2


def test_unlimited_admission_counts_but_never_refuses() -> None:
    admission = Admission(AdmissionSettings(), now=0.0)
    assert all(admission.admit("x", 0.0) is None for _ in range(10_000))
    assert admission.total == 10_000


# -- origins, bearer tokens ------------------------------------------------------------------------


def test_no_origin_header_is_a_non_browser_agent_and_allowed() -> None:
    assert origin_allowed(None, ())


def test_browser_origins_only_when_listed() -> None:
    allowed = parse_origins("https://app.example.com, http://localhost:3000/")
    assert origin_allowed("https://app.example.com", allowed)
    assert origin_allowed("HTTP://LOCALHOST:3000", allowed)
    assert not origin_allowed("https://evil.example", allowed)
    assert not origin_allowed("https://evil.example", ())
    assert not origin_allowed("null", allowed)


def test_star_allows_every_origin_only_when_given_explicitly() -> None:
    assert origin_allowed("https://anything.example", parse_origins("*"))


def test_origins_must_be_origins() -> None:
    with pytest.raises(ValueError):
        parse_origins("example.com")


@pytest.mark.parametrize(("header", "ok"), [
    ("Bearer s3cret-token-0123456789", True),
    ("bearer s3cret-token-0123456789", True),
    ("Bearer  s3cret-token-0123456789 ", True),
    ("Bearer s3cret-token-012345678", False),
    ("Bearer s3cret-token-01234567890", False),
    ("Basic s3cret-token-0123456789", False),
    ("s3cret-token-0123456789", False),
    ("Bearer ", False),
    ("Bearer é", False),
    ("", False),
    (None, False),
])
def test_bearer_token_check(header: str | None, ok: bool) -> None:
    assert bearer_token_ok(header, "s3cret-token-0123456789") is ok


# -- SDK backoff -----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=8.0, multiplier=2.0)
    lows = [backoff_delay(policy, n, jitter=lambda: 0.0) for n in range(8)]
    highs = [backoff_delay(policy, n, jitter=lambda: 1.0) for n in range(8)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert lows == [h / 2 for h in highs]


def test_backoff_spreads_many_clients_apart() -> None:
    policy = ReconnectPolicy(initial_delay=1.0, max_delay=1.0)
    delays = {round(backoff_delay(policy, 0), 3) for _ in range(200)}
    assert len(delays) > 100 and min(delays) >= 0.5 and max(delays) <= 1.0


def test_backoff_honours_retry_after_from_the_gateway() -> None:
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=30.0)
    assert backoff_delay(policy, 0, retry_after=5.0) == 5.0
    assert backoff_delay(policy, 0, retry_after=500.0) == 30.0  # but never beyond max_delay


def test_reconnect_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(initial_delay=0)
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)


# -- configuration ---------------------------------------------------------------------------------


def test_limit_options_from_environment_and_flags() -> None:
    config = load(["--rate-limit", "50", "--max-connections-per-ip", "4"], {
        "RATE_BURST": "75", "MAX_CONNECTIONS": "100", "CONNECTION_RATE": "20",
        "CONNECTION_BURST": "40", "MAX_OUTBOUND_BUFFER": "65536", "ALLOWED_ORIGINS": "*",
        "TRUST_PROXY": "yes", "ADMIN_TOKEN": "0123456789abcdef",
    })
    assert (config.rate_limit, config.rate_burst, config.max_connections) == (50.0, 75, 100)
    assert (config.max_connections_per_ip, config.connection_rate, config.connection_burst) == (4, 20.0, 40)
    assert config.max_outbound_buffer == 65536 and config.allowed_origins == ("*",)
    assert config.trust_proxy is True and config.admin_token == "0123456789abcdef"


def test_defaults_limit_abuse_out_of_the_box() -> None:
    config = Config()
    assert config.rate_limit == 100 and config.rate_burst == 200
    assert config.max_connections == 10000 and config.connection_rate == 500
    assert config.max_outbound_buffer == 1024 * 1024 and config.allowed_origins == ()
    assert config.admin_token is None and config.trust_proxy is False


def test_admin_token_never_appears_in_repr_or_errors() -> None:
    assert "0123456789abcdef" not in repr(Config(admin_token="0123456789abcdef"))
    with pytest.raises(ConfigError) as error:
        load([], {"ADMIN_TOKEN": "short-secret"})
    assert "short-secret" not in str(error.value) and "ADMIN_TOKEN" in str(error.value)


@pytest.mark.parametrize(("environ", "words"), [
    ({"RATE_LIMIT": "-1"}, "RATE_LIMIT"),
    ({"RATE_BURST": "0"}, "RATE_BURST"),
    ({"MAX_CONNECTIONS": "many"}, "MAX_CONNECTIONS"),
    ({"TRUST_PROXY": "maybe"}, "TRUST_PROXY"),
    ({"ALLOWED_ORIGINS": "example.com"}, "ALLOWED_ORIGINS"),
    ({"TLS_CERT": "/c.pem"}, "TLS_KEY"),
    ({"TLS_CLIENT_CA": "/ca.pem"}, "TLS_CERT"),
])
def test_invalid_limit_options_stop_startup_naming_the_option(environ: dict[str, str],
                                                              words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load([], environ)


def test_an_expensive_frame_pays_for_its_processing_time() -> None:
    limiter = RateLimiter(rate=100, burst=200, now=0.0)
    assert limiter.take(0.0) == 0.0
    limiter.charge(COST_UNIT / 2)  # cheaper than COST_UNIT: the one token covered it
    assert limiter.bucket.tokens == 199
    limiter.charge(25 * COST_UNIT)  # 24 more tokens
    assert limiter.bucket.tokens == pytest.approx(175)
    for _ in range(7):
        limiter.take(0.0)
        limiter.charge(25 * COST_UNIT)
    assert limiter.take(0.0) > 0  # 8 such frames emptied a bucket of 200


# -- the per-address work budget (issue 11: work before authentication is not free) ---------------


def test_work_budget_charges_an_address_until_it_is_in_debt_then_refills() -> None:
    budget = WorkBudget(rate=0.1, burst=0.5)
    assert budget.charge("a", 0.3, now=0.0) is False
    assert budget.charge("a", 0.3, now=0.0) is True  # 0.5 - 0.6 < 0
    assert budget.over("a", now=0.0) and not budget.over("b", now=0.0)
    assert budget.retry_after("a", now=0.0) == pytest.approx(1.0)  # 0.1 s owed at 0.1/s
    assert not budget.over("a", now=1.01)
    assert budget.charge("a", 0.0, now=100.0) is False
    assert len(budget) == 0  # a full budget is forgotten


def test_work_budget_memory_is_bounded() -> None:
    budget = WorkBudget(rate=0.1, burst=1.0, max_tracked=10)
    for i in range(100):
        budget.charge(f"10.0.0.{i}", 0.5 if i % 2 else 2.0, now=0.0)
    assert len(budget) <= 10
    assert budget.over("10.0.0.98", now=0.0)  # the most indebted are the last forgotten


@pytest.mark.parametrize(("rate", "burst"), [(1, 0), (-1, 1), (float("nan"), 1)])
def test_work_budget_refuses_meaningless_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        WorkBudget(rate, burst)


def test_a_work_budget_of_rate_zero_is_no_limit() -> None:
    budget = WorkBudget(rate=0, burst=1)
    assert budget.charge("a", 1e9, now=0.0) is False
    assert not budget.over("a", now=0.0) and len(budget) == 0


def test_address_work_limit_reaches_the_admission_settings() -> None:
    from aiconexus_gateway.hub import HubSettings

    config = load(["--address-work-limit", "0.5"], {})
    assert HubSettings.from_config(config).admission.work_rate == 0.5
    assert load([], {"ADDRESS_WORK_LIMIT": "0"}).address_work_limit == 0.0
    assert Config().address_work_limit == 0.25


def test_admission_refuses_an_address_in_work_debt_with_429_and_a_retry_hint() -> None:
    admission = Admission(AdmissionSettings(work_rate=0.1, work_burst=0.5), now=0.0)
    admission.work.charge("10.0.0.1", 1.0, now=0.0)
    refusal = admission.admit("10.0.0.1", now=0.0)
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.reason) == (429, "TOO_MUCH_WORK", "address_work")
    assert refusal.retry_after == pytest.approx(5.0)
    assert admission.admit("10.0.0.2", now=0.0) is None
    assert admission.admit("10.0.0.1", now=5.01) is None


def test_the_rate_policy_module_imports_only_the_standard_library() -> None:
    """The SDK's pacer imports TokenBucket from it: no prometheus-client, no server code."""
    import ast
    import inspect

    from aiconexus_gateway import ratelimit

    tree = ast.parse(inspect.getsource(ratelimit))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__"}

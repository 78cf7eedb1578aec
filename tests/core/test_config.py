"""Configuration from environment and flags: defaults, precedence, one clear line per bad value."""

from __future__ import annotations

import pytest

from aiconexus_gateway import __version__
from aiconexus_gateway.config import OPTIONS, Config, ConfigError, load, parser


def test_defaults_match_the_documented_table() -> None:
    config = load([], {})
    assert config == Config()
    assert (config.host, config.port, config.log_level) == ("127.0.0.1", 8000, "INFO")
    assert (config.agent_timeout, config.ping_interval, config.challenge_timeout) == (300.0, 20.0, 30.0)
    assert config.max_message_size == 65536
    assert (config.key_file, config.log_format, config.log_file) == (None, "text", None)
    assert config.verify_signatures == "all"


def test_environment_sets_every_documented_option() -> None:
    config = load([], {
        "GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": "9000", "LOG_LEVEL": "debug",
        "AGENT_TIMEOUT": "60", "PING_INTERVAL": "5.5", "CHALLENGE_TIMEOUT": "10",
        "MAX_MESSAGE_SIZE": "2048", "GATEWAY_KEY_FILE": "/tmp/k.json", "LOG_FORMAT": "JSON",
        "LOG_FILE": "/tmp/gw.log", "VERIFY_SIGNATURES": "handshake",
    })
    assert (config.host, config.port, config.log_level) == ("0.0.0.0", 9000, "DEBUG")
    assert (config.agent_timeout, config.ping_interval, config.challenge_timeout) == (60.0, 5.5, 10.0)
    assert config.max_message_size == 2048
    assert (config.key_file, config.log_format, config.log_file) == ("/tmp/k.json", "json", "/tmp/gw.log")
    assert config.verify_signatures == "handshake"


def test_flags_win_over_the_environment() -> None:
    env = {"GATEWAY_PORT": "9000", "LOG_LEVEL": "ERROR", "AGENT_TIMEOUT": "60"}
    config = load(["--port", "9001", "--log-level", "WARNING"], env)
    assert (config.port, config.log_level, config.agent_timeout) == (9001, "WARNING", 60.0)


def test_a_valid_flag_wins_over_an_invalid_environment_value() -> None:
    assert load(["--port", "9001"], {"GATEWAY_PORT": "not a port"}).port == 9001


def test_an_empty_environment_variable_counts_as_unset() -> None:
    assert load([], {"GATEWAY_PORT": "", "LOG_LEVEL": ""}) == Config()


def test_port_zero_asks_for_any_free_port() -> None:
    assert load(["--port", "0"], {}).port == 0


INVALID_ENV = [
    ("AGENT_TIMEOUT", "-1", "must be a positive number of seconds"),
    ("AGENT_TIMEOUT", "0", "must be a positive number of seconds"),
    ("AGENT_TIMEOUT", "abc", "must be a number"),
    ("AGENT_TIMEOUT", "nan", "must be a positive number of seconds"),
    ("AGENT_TIMEOUT", "inf", "must be a positive number of seconds"),
    ("PING_INTERVAL", "-0.5", "must be a positive number of seconds"),
    ("PING_INTERVAL", "20s", "must be a number"),
    ("CHALLENGE_TIMEOUT", "-30", "must be a positive number of seconds"),
    ("CHALLENGE_TIMEOUT", "", None),  # empty: unset, not an error
    ("GATEWAY_PORT", "70000", "must be a port number from 0 to 65535"),
    ("GATEWAY_PORT", "-1", "must be a port number from 0 to 65535"),
    ("GATEWAY_PORT", "http", "must be a number"),
    ("GATEWAY_PORT", "80.5", "must be a number"),
    ("MAX_MESSAGE_SIZE", "10", "must be at least 1024 bytes"),
    ("MAX_MESSAGE_SIZE", "64k", "must be a number"),
    ("LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("LOG_LEVEL", "CRITICAL", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("LOG_FORMAT", "xml", "must be one of text, json"),
    ("VERIFY_SIGNATURES", "none", "must be one of all, handshake"),
    ("GATEWAY_HOST", "   ", "must not be empty"),
    ("GATEWAY_KEY_FILE", " ", "must not be empty"),
]


@pytest.mark.parametrize(("variable", "value", "reason"), INVALID_ENV,
                         ids=[f"{v}={x!r}" for v, x, _ in INVALID_ENV])
def test_invalid_environment_value_is_one_line_naming_the_variable(variable: str, value: str,
                                                                   reason: str | None) -> None:
    if reason is None:
        assert load([], {variable: value}) == Config()
        return
    with pytest.raises(ConfigError) as caught:
        load([], {variable: value})
    message = str(caught.value)
    assert message == f"invalid {variable}={value!r}: {reason}"
    assert "\n" not in message


@pytest.mark.parametrize(("flag", "value", "reason"), [
    ("--port", "99999", "must be a port number from 0 to 65535"),
    ("--agent-timeout", "-5", "must be a positive number of seconds"),
    ("--challenge-timeout", "soon", "must be a number"),
    ("--log-level", "TRACE", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("--log-format", "yaml", "must be one of text, json"),
])
def test_invalid_flag_value_is_one_line_naming_the_flag(flag: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"^invalid {flag}={value!r}: {reason}$"):
        load([flag, value], {})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_every_option_has_a_flag_and_an_environment_variable_in_the_help() -> None:
    text = parser().format_help()
    fields = {f for f in Config.__dataclass_fields__}
    for option in OPTIONS:
        assert option.field in fields
        assert option.flag in text and option.env in text
    assert "a flag wins" in text


def test_version_flag_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load(["--version"], {})
    assert caught.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load(["--prot", "1"], {})
    assert caught.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_replace_returns_a_changed_copy() -> None:
    config = Config()
    changed = config.replace(port=0, log_level="DEBUG")
    assert (changed.port, changed.log_level) == (0, "DEBUG")
    assert config.port == 8000


# -- limits, access control, TLS and cluster options ---------------------------------------------------

VALID_MORE = [
    ("RATE_LIMIT", "0", "rate_limit", 0.0),
    ("RATE_LIMIT", "2.5", "rate_limit", 2.5),
    ("RATE_BURST", "1", "rate_burst", 1),
    ("MAX_CONNECTIONS", "0", "max_connections", 0),
    ("MAX_CONNECTIONS_PER_IP", "20", "max_connections_per_ip", 20),
    ("CONNECTION_RATE", "50", "connection_rate", 50.0),
    ("CONNECTION_BURST", "100", "connection_burst", 100),
    ("MAX_OUTBOUND_BUFFER", "4096", "max_outbound_buffer", 4096),
    ("ADMIN_TOKEN", "0123456789abcdef", "admin_token", "0123456789abcdef"),
    ("ALLOWED_ORIGINS", "https://a.example, HTTPS://B.example/", "allowed_origins",
     ("https://a.example", "https://b.example")),
    ("ALLOWED_ORIGINS", "*", "allowed_origins", ("*",)),
    ("TRUST_PROXY", "yes", "trust_proxy", True),
    ("TRUST_PROXY", "Off", "trust_proxy", False),
    ("REDIS_URL", "redis://127.0.0.1:6379/0", "redis_url", "redis://127.0.0.1:6379/0"),
    ("REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
    ("INSTANCE_ID", "gw-1.eu:a", "instance_id", "gw-1.eu:a"),
]


@pytest.mark.parametrize(("variable", "value", "field", "expected"), VALID_MORE,
                         ids=[f"{v}={x}" for v, x, _, _ in VALID_MORE])
def test_limit_access_and_cluster_options_parse(variable: str, value: str, field: str,
                                                expected: object) -> None:
    assert getattr(load([], {variable: value}), field) == expected


INVALID_MORE = [
    ("RATE_LIMIT", "-1", "must be a number >= 0 (0: no limit)"),
    ("RATE_LIMIT", "inf", "must be a number >= 0 (0: no limit)"),
    ("RATE_LIMIT", "fast", "must be a number"),
    ("RATE_BURST", "0", "must be a whole number >= 1"),
    ("RATE_BURST", "1.5", "must be a number"),
    ("MAX_CONNECTIONS", "-1", "must be a whole number >= 0 (0: no limit)"),
    ("CONNECTION_BURST", "0", "must be a whole number >= 1"),
    ("MAX_OUTBOUND_BUFFER", "100", "must be at least 1024 bytes"),
    ("TRUST_PROXY", "maybe", "must be true or false"),
    ("ALLOWED_ORIGINS", "example.com", "must be origins like https://app.example.com or *"),
    ("REDIS_URL", "localhost:6379", "must be a redis://, rediss:// or unix:// URL"),
    ("INSTANCE_ID", "gw 1", "must be 1-64 letters, digits, '.', '_', ':' or '-'"),
    ("INSTANCE_ID", "x" * 65, "must be 1-64 letters, digits, '.', '_', ':' or '-'"),
]


@pytest.mark.parametrize(("variable", "value", "reason"), INVALID_MORE,
                         ids=[f"{v}={x!r}"[:40] for v, x, _ in INVALID_MORE])
def test_invalid_limit_access_and_cluster_values_are_one_line_naming_the_variable(
        variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], {variable: value})
    message = str(caught.value)
    assert message.startswith(f"invalid {variable}=")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize("token", ["short", " 0123456789abcdef ", "0123456789abcde "])
def test_an_invalid_admin_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], {"ADMIN_TOKEN": token})
    message = str(caught.value)
    assert message == ("invalid ADMIN_TOKEN=(hidden): must be at least 16 characters, "
                       "without surrounding spaces")
    assert token.strip() not in message


def test_the_admin_token_is_not_in_the_config_repr() -> None:
    config = load([], {"ADMIN_TOKEN": "0123456789abcdef"})
    assert "0123456789abcdef" not in repr(config)


@pytest.mark.parametrize(("environ", "names"), [
    ({"TLS_CERT": "/c.pem"}, ("TLS_CERT", "TLS_KEY")),
    ({"TLS_KEY": "/k.pem"}, ("TLS_CERT", "TLS_KEY")),
    ({"TLS_CLIENT_CA": "/ca.pem"}, ("TLS_CLIENT_CA",)),
    ({"CLUSTER_HEARTBEAT_INTERVAL": "5", "CLUSTER_HEARTBEAT_TTL": "5"},
     ("CLUSTER_HEARTBEAT_TTL", "CLUSTER_HEARTBEAT_INTERVAL")),
])
def test_options_that_go_together_are_checked_together(environ: dict[str, str],
                                                       names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], environ)
    message = str(caught.value)
    assert all(name in message for name in names) and "\n" not in message


def test_tls_cert_and_key_together_are_accepted() -> None:
    config = load([], {"TLS_CERT": "/c.pem", "TLS_KEY": "/k.pem", "TLS_CLIENT_CA": "/ca.pem"})
    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == ("/c.pem", "/k.pem", "/ca.pem")


def test_an_invalid_redis_url_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load([], {"REDIS_URL": "redis//:s3cret@db:6379"})
    assert "s3cret" not in str(caught.value)
    assert str(caught.value).startswith("invalid REDIS_URL=")

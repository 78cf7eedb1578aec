"""The `aiconexus-monitor` command line, packaging, and the monitor's independence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import aiconexus_gateway
import monitor
from monitor.app import MonitorApp
from monitor.cli import Options, parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    assert parse_args([], {}) == Options(
        url="http://127.0.0.1:8000", interval=1.0, timeout=5.0, max_agents=200
    )


def test_environment_sets_url_and_interval() -> None:
    options = parse_args([], {"GATEWAY_URL": "http://10.0.0.5:9000/", "MONITOR_INTERVAL": "2.5"})
    assert (options.url, options.interval) == ("http://10.0.0.5:9000", 2.5)


def test_flags_win_over_the_environment() -> None:
    options = parse_args(
        ["--url", "127.0.0.1:7000", "--interval", "0.5", "--timeout", "2", "--max-agents", "50"],
        {"GATEWAY_URL": "http://10.0.0.5:9000", "MONITOR_INTERVAL": "3"},
    )
    assert options == Options(url="http://127.0.0.1:7000", interval=0.5, timeout=2.0, max_agents=50)


def test_websocket_url_given_by_mistake_becomes_the_http_base() -> None:
    assert parse_args(["--url", "ws://127.0.0.1:8000/ws"], {}).url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--url", "ftp://127.0.0.1:8000"], {}, "unsupported URL scheme 'ftp'"),
        ([], {"GATEWAY_URL": "http://"}, "no host"),
        (["--interval", "0"], {}, "must be between 0.1 and 3600 seconds"),
        ([], {"MONITOR_INTERVAL": "soon"}, "not a number: 'soon'"),
        (["--max-agents", "0"], {}, "must be between 1 and 100000"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv, env)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(["--version"], {})
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"aiconexus-monitor {monitor.__version__}"


def test_monitor_version_follows_the_distribution() -> None:
    assert monitor.__version__ == aiconexus_gateway.__version__


def test_python_dash_m_monitor_help_runs_without_touching_the_gateway_package() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['aiconexus-monitor', '--help']\n"
        "try:\n"
        "    runpy.run_module('monitor', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "import monitor\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('aiconexus_gateway'))\n"
        "assert not loaded, loaded\n"
        "import importlib, pkgutil\n"
        "for module in pkgutil.iter_modules(monitor.__path__):\n"
        "    importlib.import_module('monitor.' + module.name)\n"
        "assert not [m for m in sys.modules if m.startswith('aiconexus_gateway')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "usage: aiconexus-monitor" in result.stdout
    for option in ("--url", "--interval", "GATEWAY_URL", "MONITOR_INTERVAL", "--token", "--version"):
        assert option in result.stdout


def test_stylesheet_ships_with_the_package() -> None:
    css = Path(monitor.__file__).parent / str(MonitorApp.CSS_PATH)
    assert css.is_file()
    assert '"monitor": ["*.tcss"]' in (ROOT / "setup.py").read_text(encoding="utf-8")


# -------------------------------------------------------------------- the admin token

TOKEN = "s3cret-admin-token-0123456789"


def token_of(options: Options) -> str | None:
    return None if options.token is None else options.token.authorization


def test_no_token_by_default() -> None:
    assert parse_args([], {}).token is None


def test_empty_variables_count_as_unset_as_the_gateway_reads_them() -> None:
    options = parse_args([], {"ADMIN_TOKEN": "", "GATEWAY_URL": "", "MONITOR_INTERVAL": ""})
    assert options == parse_args([], {})


def test_the_token_comes_from_admin_token_the_variable_the_gateway_reads() -> None:
    assert token_of(parse_args([], {"ADMIN_TOKEN": TOKEN})) == f"Bearer {TOKEN}"


def test_token_flag_wins_over_the_environment() -> None:
    options = parse_args(["--token", TOKEN], {"ADMIN_TOKEN": "another-token-0123456789"})
    assert token_of(options) == f"Bearer {TOKEN}"


def test_token_file_is_read_without_its_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    options = parse_args(["--token-file", str(path)], {"ADMIN_TOKEN": "other-token-0123456789"})
    assert token_of(options) == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--token", TOKEN, "--token-file", "x"], {}, "not allowed with argument"),
        (["--token-file", "/nonexistent/admin-token"], {}, "cannot read the token file"),
        (["--token", "  "], {}, "the admin token is empty"),
        ([], {"ADMIN_TOKEN": "  "}, "the admin token is empty"),
        (["--token", TOKEN + "\x1b[2J"], {}, "printable ASCII"),
        (["--token", TOKEN + "é"], {}, "printable ASCII"),
    ],
)
def test_unusable_tokens_are_refused_without_showing_them(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv, env)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert TOKEN not in err


def test_empty_token_file_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "admin-token"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        parse_args(["--token-file", str(path)], {})
    assert f"the token file {path} is empty" in capsys.readouterr().err


def test_the_token_is_never_in_the_options_text() -> None:
    options = parse_args(["--token", TOKEN], {})
    assert options.token is not None
    for text in (repr(options), str(options), repr(options.token), str(options.token)):
        assert TOKEN not in text
    assert "hidden" in repr(options.token)


# -------------------------------------------------------------------- without the extra

BLOCK_IMPORT = """\
import importlib.abc, os, sys

class _Missing(importlib.abc.MetaPathFinder):
    # as if `pip install aiconexus-gateway` had been run without the [monitor] extra
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == os.environ["BLOCKED_MODULE"]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def run_without(module: str, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`argv` run with a Python in which importing `module` fails."""
    (tmp_path / "sitecustomize.py").write_text(BLOCK_IMPORT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BLOCKED_MODULE": module}
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("missing", ["textual", "httpx"])
@pytest.mark.parametrize(
    "command",
    [
        ["-m", "monitor"],
        # what the installed console script does (setup.py: aiconexus-monitor=monitor.cli:run)
        ["-c", "import sys; from monitor.cli import run; sys.exit(run())"],
    ],
)
def test_without_the_monitor_extra_it_says_which_to_install_and_exits_1(
    missing: str, command: list[str], tmp_path: Path
) -> None:
    result = run_without(missing, tmp_path, *command, "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"aiconexus-monitor: {missing} is not installed; the monitor needs the 'monitor' "
        "extra: pip install 'aiconexus-gateway[monitor]'"
    )


def test_help_needs_no_extra(tmp_path: Path) -> None:
    result = run_without("textual", tmp_path, "-m", "monitor", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: aiconexus-monitor" in result.stdout


def test_the_console_script_is_the_module_that_needs_no_extra() -> None:
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"aiconexus-monitor=monitor.cli:run"' in setup

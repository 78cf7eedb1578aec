"""deploy/nginx/gateway.conf: TLS, WebSocket upgrade, forwarded headers, long idle timeouts.

Read as nginx blocks (a small parser); when an `nginx` binary is installed, `nginx -t` also
checks the file for real, with a throw-away certificate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import DEPLOY, self_signed_certificate

CONF = DEPLOY / "nginx" / "gateway.conf"


@dataclass
class Block:
    name: str
    directives: list[list[str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def values(self, name: str) -> list[list[str]]:
        return [d[1:] for d in self.directives if d[0] == name]

    def find(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name.split()[0] == name]

    def headers(self) -> dict[str, str]:
        return {args[0].lower(): " ".join(args[1:]) for args in self.values("proxy_set_header")}


def parse(text: str) -> Block:
    tokens = re.findall(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    root = Block("main")
    stack = [root]
    words: list[str] = []
    for token in tokens:
        if token == "{":
            block = Block(" ".join(words))
            stack[-1].blocks.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
            assert stack, "unbalanced }"
        elif token == ";":
            stack[-1].directives.append(words)
            words = []
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces or a missing ;"
    return root


@pytest.fixture(scope="module")
def conf() -> Block:
    return parse(CONF.read_text())


def server(conf: Block) -> Block:
    (srv,) = conf.find("server")
    return srv


def location(conf: Block, path: str) -> Block:
    found = [b for b in server(conf).find("location") if b.name.split()[-1] == path]
    assert len(found) == 1, f"location {path}"
    return found[0]


def test_terminates_tls(conf: Block) -> None:
    srv = server(conf)
    assert ["443", "ssl"] in srv.values("listen")
    assert srv.values("ssl_certificate") == [["/etc/nginx/certs/tls.crt"]]
    assert srv.values("ssl_certificate_key") == [["/etc/nginx/certs/tls.key"]]
    assert srv.values("ssl_protocols") == [["TLSv1.2", "TLSv1.3"]]


def test_upgrades_websockets_on_ws(conf: Block) -> None:
    ws = location(conf, "/ws")
    headers = ws.headers()
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    (upgrade_map,) = conf.find("map")
    assert upgrade_map.name == "map $http_upgrade $connection_upgrade"
    assert server(conf).values("proxy_http_version") == [["1.1"]]


def test_idle_agents_are_not_cut_off(conf: Block) -> None:
    ws = location(conf, "/ws")
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = ws.values(directive)
        assert value[0].endswith("s") and int(value[0][:-1]) >= 3600


def test_every_proxied_location_forwards_client_address(conf: Block) -> None:
    """proxy_set_header in a location replaces the server's: each location must list them."""
    proxied = [b for b in server(conf).find("location") if b.values("proxy_pass")]
    assert len(proxied) >= 2
    for block in proxied:
        headers = block.headers()
        assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for", block.name
        assert headers["x-forwarded-proto"] == "$scheme", block.name
        assert headers["host"] == "$host", block.name
        assert block.values("proxy_pass") == [["http://aiconexus_gateway"]]


def test_upstream_is_the_scalable_compose_service(conf: Block) -> None:
    (upstream,) = conf.find("upstream")
    assert upstream.name == "upstream aiconexus_gateway"
    servers = upstream.values("server")
    assert servers[0][0] == "gateway-cluster:8000"
    assert ["least_conn"] in [d for d in upstream.directives]


def test_nginx_accepts_the_file(tmp_path: Path) -> None:
    """`nginx -t` on the file as a host would use it (upstream on 127.0.0.1, own certificate)."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not nginx:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: scripts/ensure-test-tools.sh installs it (nginx-light)")
        pytest.skip("nginx is not installed; the structural tests above still ran")
    self_signed_certificate(tmp_path)
    conf = CONF.read_text().replace("gateway-cluster:8000", "127.0.0.1:8000")
    conf = conf.replace("/etc/nginx/certs/", f"{tmp_path}/")
    (tmp_path / "gateway.conf").write_text(conf)
    temp_paths = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp_paths}    include {tmp_path}/gateway.conf;\n}}\n"
    )
    result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", str(tmp_path),
                             "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr

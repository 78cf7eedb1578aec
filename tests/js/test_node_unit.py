"""The JavaScript client's own checks, as part of `make test`: its `node --test` unit tests, its
JSDoc types under `tsc`, its committed declarations, and its package metadata."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from aiconexus_gateway import __version__
from tests.js.node_tools import CLIENT, node, node_modules, run


def test_node_unit_tests_pass() -> None:
    node_modules()
    tests = sorted(str(path.relative_to(CLIENT)) for path in (CLIENT / "test").glob("*.test.js"))
    assert len(tests) >= 6, tests
    done = run([node(), "--test", *tests])
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"node --test failed:\n{output}"
    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", output, re.MULTILINE)
    assert passed and failed, output
    assert int(failed.group(1)) == 0 and int(passed.group(1)) >= 40, output


def test_sources_type_check_and_committed_declarations_are_current(tmp_path: Path) -> None:
    """`tsc` checks the JSDoc types of src/ (strict) and writes types/, which npm users get:
    the committed types/ must be what tsc writes from the sources as they are."""
    modules = node_modules()
    tsc = modules / "typescript" / "bin" / "tsc"
    done = run([node(), str(tsc), "-p", "tsconfig.json", "--outDir", str(tmp_path / "types")])
    assert done.returncode == 0, f"tsc found errors:\n{done.stdout}{done.stderr}"
    written = {path.name: path.read_text() for path in (tmp_path / "types").glob("*.d.ts")}
    committed = {path.name: path.read_text() for path in (CLIENT / "types").glob("*.d.ts")}
    assert written.keys() == committed.keys()
    stale = [name for name in written if written[name] != committed[name]]
    assert not stale, f"clients/js/types is stale ({stale}); run `npx tsc -p tsconfig.json` in clients/js"


def test_a_typescript_user_of_the_package_type_checks() -> None:
    """clients/js/test/types/consumer.ts against the committed declarations, with two lines that
    must NOT type-check (`@ts-expect-error`), so the declarations are not just `any`."""
    tsc = node_modules() / "typescript" / "bin" / "tsc"
    done = run([node(), str(tsc), "-p", "test/types"])
    assert done.returncode == 0, f"tsc found errors:\n{done.stdout}{done.stderr}"


def test_package_metadata_matches_the_gateway() -> None:
    package = json.loads((CLIENT / "package.json").read_text())
    assert package["version"] == __version__
    assert package["type"] == "module"
    assert package["engines"]["node"] == ">=20"
    entry = package["exports"]["."]
    for target in (entry["types"], entry["default"], package["main"], package["types"]):
        assert (CLIENT / target).is_file(), target
    index = (CLIENT / "src" / "index.js").read_text()
    assert f"export const VERSION = '{__version__}';" in index
    lock = json.loads((CLIENT / "package-lock.json").read_text())
    assert lock["packages"][""]["version"] == __version__
    # ws: only for Node 20, never loaded by a browser; libsodium.js: only for end-to-end
    # encryption, loaded on its first use (a dynamic import), so a page that never encrypts loads
    # nothing more
    assert set(package["dependencies"]) == {"ws", "libsodium-wrappers"}
    for module in (CLIENT / "src").glob("*.js"):
        assert "from 'libsodium" not in module.read_text(), module


def test_the_package_imports_in_node_by_its_name() -> None:
    """What an npm user writes: `import ... from '@aiconexus/gateway-client'` (through `exports`)."""
    node_modules()
    link = CLIENT / "node_modules" / "@aiconexus" / "gateway-client"
    link.parent.mkdir(exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() else shutil.rmtree(link)
    link.symlink_to(CLIENT, target_is_directory=True)
    script = ("import { GatewayClient, AgentKey, VERSION } from '@aiconexus/gateway-client';"
              "const key = await AgentKey.generate();"
              "console.log(JSON.stringify({did: key.did, VERSION, client: typeof GatewayClient}));")
    try:
        done = run([node(), "--input-type=module", "-e", script])
    finally:
        link.unlink()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["VERSION"] == __version__ and result["client"] == "function"
    assert result["did"].startswith("did:key:z6Mk")

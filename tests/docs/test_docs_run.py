"""Every runnable block of the READMEs runs against a real ``arbiter serve`` and prints what the docs say.

One server per document (the example policies, a free port), started on
first use; a document's blocks run in order against it, as a reader would
follow them. The rules for blocks and markers are in
``tests/docs/markdown_blocks.py`` and docs/contributing.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from markdown_blocks import (
    Block,
    MarkdownRuleError,
    console_steps,
    output_matches,
    read_blocks,
    rewrite,
)
from server_procs import EXAMPLES, ROOT, ServerProcess, free_port, health_status

from arbiter_client import ArbiterClient, Timeouts

# The documents whose blocks must run. Add a document here when it gets commands.
DOCUMENTS: Final = ("README.md", "clients/python/README.md")
# The listeners the docs call: documented port -> the ARBITER_* variable that
# sets it. Test servers listen on free ports instead; 127.0.0.1:PORT and
# localhost:PORT in a block (and in its output) are rewritten to them, and
# the variables point at them. A new listener goes here and in _served().
LISTENERS: Final = {50051: "ARBITER_LISTEN", 8080: "ARBITER_HTTP_LISTEN"}
GRPC_PORT: Final = 50051
BIN: Final = Path(sys.executable).parent
BLOCK_TIMEOUT_S: Final = 60.0
SERVING: Final = 1  # grpc.health.v1 ServingStatus.SERVING
FALLBACK_ATTEMPTS: Final = 3
# What arbiter_client logs when decide() / check() fall back (clients/python/README.md, "Fallback").
_CLIENT_FELL_BACK: Final = re.compile(r"arbiter (decide|check) fell back to")


def _collect() -> tuple[list[Block], dict[str, str]]:
    blocks: list[Block] = []
    errors: dict[str, str] = {}
    for document in DOCUMENTS:
        try:
            blocks += [b for b in read_blocks(ROOT / document, ROOT) if b.runnable]
        except MarkdownRuleError as exc:
            errors[document] = str(exc)
    return blocks, errors


BLOCKS, RULE_ERRORS = _collect()


Addresses = dict[int, str]  # documented port -> the test server's host:port


@pytest.fixture(scope="session")
def doc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Addresses]]:
    """The addresses of the document's server (started, and warmed up, on first use)."""
    servers: dict[str, tuple[ServerProcess, Addresses]] = {}
    log_dir = tmp_path_factory.mktemp("docs-servers")

    def addresses_for(document: str) -> Addresses:
        if document not in servers:
            server = ServerProcess(EXAMPLES, log_dir, name=document.replace("/", "_")).start()
            servers[document] = (server, _served(server))
            _warm_up(server.address)
        return servers[document][1]

    yield addresses_for
    for server, _ in servers.values():
        server.stop()


def _served(server: ServerProcess) -> Addresses:
    """Where the test server listens, for each documented port."""
    addresses = {GRPC_PORT: server.address, 8080: server.http_url.removeprefix("http://")}
    assert addresses.keys() == LISTENERS.keys(), "a listener of LISTENERS is not served"
    return addresses


def _warm_up(address: str) -> None:
    """One dry-run Decide, so the first documented call is not the server's first."""
    with ArbiterClient(address, timeouts=Timeouts(decide=5.0), raise_on_error=True) as client:
        client.decide("docs-warm-up", "home_banner", channels=["in_app"], dry_run=True)


def _where(addresses: Addresses) -> dict[str, Any]:
    """How a block runs: from the repository root, no input, and the caller's
    environment minus its ARBITER_* settings, pointed at the test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env.update({LISTENERS[port]: address for port, address in addresses.items()})
    env["VENV"] = sys.prefix  # make targets use the environment running the tests
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return {"cwd": ROOT, "env": env, "stdin": subprocess.DEVNULL}


def _argv(lang: str, text: str, tmp_path: Path) -> list[str]:
    if lang == "python":
        script = tmp_path / "block.py"
        script.write_text(text)
        return [sys.executable, str(script)]
    return ["bash", "-e", "-o", "pipefail", "-c", text]


def _run(argv: list[str], addresses: Addresses, what: str) -> subprocess.CompletedProcess[str]:
    """Run to completion; fail with its output unless it exits 0.

    A run in which the client fell back (the documented answer to a missed
    deadline: 50 ms by default, which a loaded test machine can miss) is
    run again, up to FALLBACK_ATTEMPTS times; the client logs every
    fallback at WARNING, so the last run's stderr shows it if all fell back.
    """
    for _ in range(FALLBACK_ATTEMPTS):
        done = subprocess.run(
            argv,
            **_where(addresses),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not _CLIENT_FELL_BACK.search(done.stderr):
            break
    assert done.returncode == 0, (
        f"{what} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done


def _assert_prints(want: str, done: subprocess.CompletedProcess[str], what: str) -> None:
    assert output_matches(want, done.stdout), (
        f"{what} printed\n{done.stdout}\n--- but the docs say\n{want}\n--- stderr\n{done.stderr}"
    )


def _run_server_block(block: Block, tmp_path: Path) -> None:
    """Start the block on a free port, wait for SERVING, stop it as Ctrl-C would."""
    addresses = {port: f"127.0.0.1:{free_port()}" for port in LISTENERS}
    address = addresses[GRPC_PORT]
    argv = _argv(block.lang, rewrite(block.text, addresses, BIN), tmp_path)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            **_where(addresses),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + BLOCK_TIMEOUT_S
        while health_status(address) != SERVING:
            assert proc.poll() is None, f"{block.id} exited early: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"{block.id} never SERVING: {log_path.read_text()}"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            pytest.fail(f"{block.id} did not stop on SIGINT: {log_path.read_text()}")
    assert health_status(address) == -1, f"{block.id} still answers after it stopped"


def _require_node_if_called(block: Block) -> None:
    """A block calling npx needs Node.js; as for the other Node tests, a local run may skip it."""
    if not re.search(r"\bnpx\b", block.text) or shutil.which("npx"):
        return
    message = f"{block.id} calls npx: install Node.js 20+ and run `make node-deps`"
    if os.environ.get("ARBITER_SKIP_NODE_TESTS") == "1" and not os.environ.get("CI"):
        pytest.skip(f"{message} (skipped: ARBITER_SKIP_NODE_TESTS=1)")
    pytest.fail(message + " -- or set ARBITER_SKIP_NODE_TESTS=1 to skip locally")


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_block_runs_and_prints_what_the_docs_say(
    block: Block, doc_server: Callable[[str], Addresses], tmp_path: Path
) -> None:
    if block.directive == "skip":
        pytest.skip(f"marked in {block.id}: {block.reason}")
    _require_node_if_called(block)
    if block.directive == "server":
        _run_server_block(block, tmp_path)
        return
    addresses = doc_server(block.path)
    if block.lang == "console":
        for command, want in console_steps(rewrite(block.text, addresses, BIN)):
            argv = _argv("sh", command, tmp_path)
            _assert_prints(want, _run(argv, addresses, f"{block.id} `{command}`"), f"`{command}`")
        return
    argv = _argv(block.lang, rewrite(block.text, addresses, BIN), tmp_path)
    got = _run(argv, addresses, block.id)
    if block.output is not None:
        _assert_prints(rewrite(block.output, addresses, BIN), got, block.id)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_follows_the_docs_test_rules(document: str) -> None:
    assert document not in RULE_ERRORS, RULE_ERRORS[document]
    assert any(b.path == document and b.directive == "run" for b in BLOCKS), (
        f"{document} has no block that runs"
    )


def test_buf_is_pinned_to_one_version() -> None:
    """scripts/proto.sh, the package.json files (what CI installs) and every `buf` the docs call agree."""
    script = (ROOT / "scripts" / "proto.sh").read_text()
    pinned = re.search(r'^BUF_VERSION="([^"]+)"', script, re.MULTILINE)
    assert pinned is not None
    for folder in (ROOT, ROOT / "clients" / "typescript"):
        package = json.loads((folder / "package.json").read_text())
        lock = json.loads((folder / "package-lock.json").read_text())
        assert package["devDependencies"]["@bufbuild/buf"] == pinned[1], folder
        assert lock["packages"]["node_modules/@bufbuild/buf"]["version"] == pinned[1], folder
    called = [
        (document, version)
        for document in DOCUMENTS
        for version in re.findall(r"@bufbuild/buf@([\w.-]+)", (ROOT / document).read_text())
    ]
    assert called, "no document calls buf any more: drop this test or package.json"
    assert all(version == pinned[1] for _, version in called), (called, pinned[1])

"""Fixtures of the `nndex code` tests (helpers live in code_helpers.py next to this file)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from typing import Any

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from code_helpers import FIXTURE_TREE, FakeEmbeddingServer, FakeProvider  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def fake_provider():
    """A fresh fake provider (hash vectors); .texts lists every text it embedded."""
    return FakeProvider()


@pytest.fixture
def code_tree(tmp_path):
    """A writable copy of tests/fixtures/code_tree."""
    dest = tmp_path / "tree"
    shutil.copytree(FIXTURE_TREE, dest)
    return dest


@pytest.fixture
def embed_server():
    server = FakeEmbeddingServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------------------
# Running the command line
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def run_cli(child_env):
    """Runs ``python -m nndex.code ARGS`` and returns the CompletedProcess (text mode)."""

    def run(*args: str, cwd: Any = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = dict(child_env)
        full_env.pop("NNDEX_DEBUG", None)
        if env:
            full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "nndex.code", *map(str, args)],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run

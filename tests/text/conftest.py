"""Fixtures for the LLM and descriptor tests: the toy OpenAI-compatible server and clients."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/llm_server.py

from llm_server import MODEL, ToyLLMServer  # noqa: E402

from zsvl.text.llm import LLMConfig, OpenAIChatClient  # noqa: E402
from zsvl.text.llm_cache import LLMCache  # noqa: E402


@pytest.fixture
def llm_server() -> Iterator[ToyLLMServer]:
    """A fresh toy LLM server on 127.0.0.1 (real sockets), stopped after the test."""
    with ToyLLMServer() as server:
        yield server


@pytest.fixture
def make_client(llm_server: ToyLLMServer, tmp_path: Path) -> Callable[..., OpenAIChatClient]:
    """Build real openai-backed clients for the server, sharing one cache folder per test."""

    def make(offline: bool = False, **overrides) -> OpenAIChatClient:
        settings = {"model": MODEL, "base_url": llm_server.base_url, "timeout": 5.0, **overrides}
        return OpenAIChatClient(
            LLMConfig(**settings), cache=LLMCache(tmp_path / "llm-cache"), offline=offline
        )

    return make

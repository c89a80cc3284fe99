"""Shared, named, seeded fixtures for every test (after CS336's ``tests/conftest.py``).

Tests run on one torch thread (set by an autouse fixture, restored afterwards,
never at import): tiny models gain nothing from a second thread, and the
numbers must not depend on the machine's core count. A test that needs the
real course sizes asks for ``two_threads``.
"""
from __future__ import annotations

import pytest
import torch

from utils.chats import load_chats
from utils.model import GPT, GPTConfig
from utils.repro import torch_threads
from utils.text import load_tokenizer

#: A GPT small enough that a forward pass takes microseconds; vocabulary of 64 ids.
TINY_CONFIG = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, d_model=16)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture
def two_threads():
    """For slow tests of the course-sized models: the course's own thread count."""
    with torch_threads(2):
        yield


@pytest.fixture(scope="session")
def tok():
    """The course's byte-level BPE tokenizer (data/tokenizer.json)."""
    return load_tokenizer()


@pytest.fixture(scope="session")
def chats():
    """The shipped TinyWorld chats (data/tinyworld_chats.jsonl)."""
    return load_chats()


def make_gpt(cfg: GPTConfig = TINY_CONFIG, seed: int = 0) -> GPT:
    """A freshly initialised GPT from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    return GPT(cfg).eval()


@pytest.fixture
def tiny_gpt() -> GPT:
    """An untrained GPT with ``TINY_CONFIG`` (vocabulary 64, context 16)."""
    return make_gpt()


@pytest.fixture(scope="module")
def chat_gpt(tok) -> GPT:
    """An untrained GPT that reads the course tokenizer's ids: 1 layer, context 64."""
    return make_gpt(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, d_model=32, n_head=2, block_size=64))


def random_tokens(B: int, T: int, vocab: int = TINY_CONFIG.vocab_size, seed: int = 0) -> torch.Tensor:
    """(B, T) random token ids from their own generator."""
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))

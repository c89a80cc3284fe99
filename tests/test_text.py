"""Tests for utils/text.py: the byte-level BPE tokenizer and the simple splitters."""
from __future__ import annotations

import random

import pytest
import torch

from utils.text import (
    N_BYTES,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    BPETokenizer,
    TokenizerFileMissing,
    load_tokenizer,
    merge_pair,
    pretokenize,
    split_chars,
    split_words,
    tokenizer_path,
    train_bpe,
    train_course_tokenizer,
)

TINY_TEXTS = ["the cat sat on the mat.", "the cat ate the rat!", "a hat, a bat, a cat"] * 5

TRICKY = [
    "",
    " ",
    "\n\n  \t\r\n",
    "Hello, world!",
    "This is a story about Mia. She had a cat.",
    "mia.rossi@example.com",
    "Call +44 20 7946 0958 now",
    "snake_case_name and __dunder__",
    "naïve café, Ünïcödé",
    "你好，世界",
    "Привет, мир",
    "🙂👍🏽 family: 👨‍👩‍👧",
    "e\u0301 combining accent",
    "<|user|> hi <|assistant|>",
    "<|endoftext|><|end|><|pad|><|memory|>",
    "<|user",
    "tabs\tand    many     spaces   ",
    "x" * 1000,
    "lone surrogate \ud800 survives",
]


@pytest.fixture(scope="module")
def tiny_tok():
    """A small BPE trained in milliseconds on a few sentences about cats."""
    return train_bpe(TINY_TEXTS, vocab_size=N_BYTES + 20 + len(SPECIAL_TOKENS))


@pytest.fixture(scope="module")
def course_tok(tok):
    return tok


# --- splitters --------------------------------------------------------------
def test_split_chars_and_words():
    assert split_chars("a cat.") == ["a", " ", "c", "a", "t", "."]
    assert split_words("Mia's cat, Rex.") == ["Mia", "'", "s", "cat", ",", "Rex", "."]


@pytest.mark.parametrize("text", TRICKY)
def test_pretokenize_is_lossless(text):
    assert "".join(pretokenize(text)) == text


def test_pretokenize_keeps_leading_space_with_word():
    assert pretokenize("She had a cat.") == ["She", " had", " a", " cat", "."]


# --- training ----------------------------------------------------------------
def test_merge_pair_left_to_right():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_tiny_training_counts(tiny_tok):
    assert tiny_tok.vocab_size == N_BYTES + 20 + len(SPECIAL_TOKENS)
    assert len(tiny_tok.merges) == 20
    assert " cat" in tiny_tok.pieces(range(N_BYTES, tiny_tok.vocab_size))


def test_training_is_deterministic():
    first = train_bpe(TINY_TEXTS, 300)
    second = train_bpe(list(reversed(TINY_TEXTS)), 300)  # order of texts must not matter
    assert first.merges == second.merges
    assert first.fingerprint() == second.fingerprint()


def test_ties_go_to_smallest_pair():
    # "ab" and "cd" occur equally often: (a, b) has smaller ids, so it is merged first.
    tok = train_bpe(["ab cd", "cd ab"], N_BYTES + 1 + len(SPECIAL_TOKENS))
    assert tok.merges[0] == (ord("a"), ord("b"))


def test_training_stops_when_no_pairs_left():
    tok = train_bpe(["aaaa"], 1000)
    assert tok.merges == [(97, 97), (256, 256)]
    assert tok.encode("aaaa") == [257]


def test_vocab_size_too_small_is_explained():
    with pytest.raises(ValueError, match="too small.*at least 262"):
        train_bpe(TINY_TEXTS, 100)


# --- round trips --------------------------------------------------------------
@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_tricky_strings(course_tok, tiny_tok, text):
    assert course_tok.decode(course_tok.encode(text)) == text
    assert tiny_tok.decode(tiny_tok.encode(text)) == text
    assert course_tok.decode(course_tok.encode(text, allow_special=True)) == text


def test_round_trip_random_unicode(course_tok):
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x30000)]))
                       for _ in range(rng.randrange(0, 30)))
        assert course_tok.decode(course_tok.encode(text)) == text


def test_decode_of_a_cut_character_does_not_crash(course_tok):
    ids = course_tok.encode("🙂")
    assert len(ids) == 4  # four UTF-8 bytes, no merge for them in TinyWorld
    assert course_tok.decode(ids[:2]) == "\ufffd"


def test_decode_accepts_tensors(course_tok):
    ids = course_tok.encode("She had a cat.")
    assert course_tok.decode(torch.tensor(ids)) == "She had a cat."


def test_common_words_are_single_tokens(course_tok):
    assert course_tok.pieces(course_tok.encode("Once upon a time, she lived")) == [
        "Once", " upon", " a", " time", ",", " she", " lived"]


# --- special tokens -------------------------------------------------------------
def test_special_ids(course_tok):
    assert course_tok.vocab_size == VOCAB_SIZE == 512
    names = ["eot_id", "user_id", "assistant_id", "end_id", "memory_id", "pad_id"]
    ids = [getattr(course_tok, name) for name in names]
    assert ids == [course_tok.special_ids[t] for t in SPECIAL_TOKENS] == list(range(506, 512))


def test_special_tokens_are_single_ids_only_when_allowed(course_tok):
    text = "<|user|>Hi<|end|><|assistant|>"
    assert course_tok.encode(text, allow_special=True)[0] == course_tok.user_id
    special = set(course_tok.special_ids.values())
    assert len(course_tok.encode("<|user|>", allow_special=True)) == 1
    assert not special & set(course_tok.encode(text))  # user text cannot forge a turn
    assert course_tok.decode(course_tok.encode(text, allow_special=True)) == text


def test_special_tokens_never_come_from_merges(course_tok):
    for text in ["<|endoftext|>" * 50, "".join(SPECIAL_TOKENS) * 20]:
        ids = course_tok.encode(text)
        assert max(ids) < N_BYTES + len(course_tok.merges)


def test_unknown_special_name_is_explained():
    tok = train_bpe(TINY_TEXTS, N_BYTES + 1, special_tokens=("<|endoftext|>",))
    assert tok.eot_id == N_BYTES
    with pytest.raises(KeyError, match="not a special token of this tokenizer"):
        tok.user_id  # noqa: B018


# --- saving and loading -------------------------------------------------------
def test_save_load_round_trip(tiny_tok, tmp_path):
    path = tmp_path / "tok.json"
    tiny_tok.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.fingerprint() == tiny_tok.fingerprint()
    assert loaded.merges == tiny_tok.merges
    assert loaded.special_ids == tiny_tok.special_ids
    assert loaded.encode(TRICKY[4]) == tiny_tok.encode(TRICKY[4])


def test_fingerprint_changes_with_merges(tiny_tok):
    other = BPETokenizer(tiny_tok.merges[:-1])
    assert other.fingerprint() != tiny_tok.fingerprint()
    assert len(tiny_tok.fingerprint()) == 64


def test_shipped_tokenizer_is_current(course_tok, tmp_path):
    """data/tokenizer.json must be exactly what `python -m utils.text` writes today (~0.3 s, not slow)."""
    fresh = train_course_tokenizer()
    assert fresh.fingerprint() == course_tok.fingerprint()
    fresh.save(tmp_path / "tokenizer.json")
    assert (tmp_path / "tokenizer.json").read_bytes() == tokenizer_path().read_bytes()


# --- friendly errors -------------------------------------------------------------
def test_encode_non_string_says_what_it_got(course_tok):
    with pytest.raises(TypeError, match="needs a str, but got int"):
        course_tok.encode(42)
    with pytest.raises(TypeError, match="got list.*call encode\\(\\) on each"):
        course_tok.encode(["a", "b"])


def test_decode_out_of_range_says_valid_range(course_tok):
    with pytest.raises(IndexError, match=r"token id 512 is out of range: valid ids are 0\.\.511"):
        course_tok.decode([1, 512])
    with pytest.raises(IndexError, match="token id -1 is out of range"):
        course_tok.decode([-1])


def test_decode_wrong_types_are_explained(course_tok):
    with pytest.raises(TypeError, match="needs a list of integer ids, got str"):
        course_tok.decode("hello")
    with pytest.raises(TypeError, match="token ids must be integers, got float"):
        course_tok.decode([1.5])


def test_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(TokenizerFileMissing, match=r"missing\. Rebuild it with `python -m utils\.text`"):
        load_tokenizer(tmp_path / "nope.json")


def test_broken_file_says_how_to_rebuild(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON.*python -m utils.text"):
        BPETokenizer.load(bad)
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="is not a .*tokenizer file"):
        BPETokenizer.load(bad)


def test_bad_merge_is_explained():
    with pytest.raises(ValueError, match="uses an id that does not exist yet"):
        BPETokenizer([(1, 300)])

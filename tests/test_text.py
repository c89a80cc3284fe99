"""Tests for utils/text.py: the byte-level BPE tokenizer and the simple splitters."""
from __future__ import annotations

import random
import re
import sys
import unicodedata
from collections import Counter

import pytest
import torch

from utils.text import (
    N_BYTES,
    PRETOKEN_PATTERN,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    BPETokenizer,
    TokenizerFileMissing,
    count_pretokens,
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


# --- the pre-tokenizer vs GPT-2's (utils.text.PRETOKEN_PATTERN documents the differences) ---
#: Unicode's White_Space property (PropList.txt; unchanged since Unicode 6.3): what GPT-2's ``\s`` matches.
WHITE_SPACE = frozenset([*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                         0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
SEPARATORS = frozenset(range(0x1C, 0x20))  # U+001C..U+001F: whitespace for Python's re, not for GPT-2


def _is_not_digit_number(c):
    return unicodedata.category(c) in ("No", "Nl")


def _ours(c):
    """Which branch of PRETOKEN_PATTERN a single character falls in: L(etter), N(umber), S(pace), P(unct)."""
    return ("L" if re.match(r"[^\W\d_]", c) else "N" if re.match(r"\d", c) else
            "S" if re.match(r"\s", c) else "P")


def _gpt2(c):
    r"""The same for GPT-2's pattern: \p{L}, \p{N}, Unicode White_Space, anything else."""
    cat = unicodedata.category(c)
    return "S" if ord(c) in WHITE_SPACE else "L" if cat[0] == "L" else "N" if cat[0] == "N" else "P"


def _char_class(pred):
    """A regex class body listing every code point where ``pred`` holds, as ranges."""
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and pred(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@pytest.fixture(scope="module")
def gpt2_pattern():
    """GPT-2's pre-tokenizer (openai/gpt-2 encoder.py), spelled out for Python's re with Unicode's classes."""
    L = _char_class(lambda c: unicodedata.category(c)[0] == "L")
    N = _char_class(lambda c: unicodedata.category(c)[0] == "N")
    S = "".join(f"\\U{cp:08x}" for cp in sorted(WHITE_SPACE))
    return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")


def test_pretokenizer_differs_from_gpt2_only_on_the_documented_characters():
    for branch in (r" ?[^\W\d_]+", r" ?\d+", r" ?(?:[^\s\w]|_)+", r"\s+(?!\S)"):  # the classes _ours() uses
        assert branch in PRETOKEN_PATTERN
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    ours = {branch: set(re.findall(rx, every)) for branch, rx in (("L", r"[^\W\d_]"), ("N", r"\d"), ("S", r"\s"))}
    # a character in none of these sets is punctuation for both patterns
    suspects = set().union(*ours.values()) | {c for c in every if unicodedata.category(c)[0] in "LN"}
    suspects |= {chr(cp) for cp in WHITE_SPACE}
    differ = Counter()
    for c in suspects:
        mine, gpt2 = _ours(c), _gpt2(c)
        if mine != gpt2:
            expected = ("L", "N") if _is_not_digit_number(c) else ("S", "P") if ord(c) in SEPARATORS else None
            assert (mine, gpt2) == expected, f"U+{ord(c):04X} ({unicodedata.name(c, '?')}): {mine} vs GPT-2 {gpt2}"
            differ[expected] += 1
    n_other_numbers = sum(_is_not_digit_number(c) for c in every)
    assert differ == {("S", "P"): 4, ("L", "N"): n_other_numbers} and n_other_numbers > 1000


def test_pretokenize_matches_gpt2_on_text_without_those_characters(gpt2_pattern):
    rng = random.Random(0)
    alphabet = list("abcXYZ019 .,'!_-\n\t") + ["é", "ß", "你", "Ж", "🙂", "\u0301", "\u00a0", "\u3000", "٣"]
    samples = TRICKY + ["Mia's cat. She'll say: it's 42!", "a  b   c\n\n d", "x__y  ", "'re're 'S"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(500)]
    for text in samples:
        assert pretokenize(text) == gpt2_pattern.findall(text), repr(text)


def test_the_emulation_matches_the_real_gpt2_pattern_where_regex_is_installed(gpt2_pattern):
    """With the `regex` module (not a course dependency): GPT-2's own pattern, on characters Python knows."""
    regex = pytest.importorskip("regex")
    real = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    rng = random.Random(1)
    known = [c for c in (chr(rng.randrange(0x30000)) for _ in range(6000)) if unicodedata.category(c) != "Cn"]
    for _ in range(2000):
        text = "".join(rng.choice(known + list("ab 1.,'\n")) for _ in range(rng.randrange(30)))
        assert real.findall(text) == gpt2_pattern.findall(text), repr(text)


@pytest.mark.parametrize("text, ours, gpt2", [
    ("x² + ½", ["x²", " +", " ½"], ["x", "²", " +", " ½"]),   # No (superscript): a letter here, a number there
    ("H₂O", ["H₂O"], ["H", "₂", "O"]),                         # No (subscript)
    ("1½ cups", ["1", "½", " cups"], ["1½", " cups"]),        # No (fraction) after a digit
    ("chapter Ⅻ2", ["chapter", " Ⅻ", "2"], ["chapter", " Ⅻ2"]),  # Nl (Roman numeral)
    ("a \x1fb", ["a", " ", "\x1f", "b"], ["a", " \x1f", "b"]),   # U+001F: whitespace here, punctuation there
    ("a\x1c\x1d  b", ["a", "\x1c\x1d ", " b"], ["a", "\x1c\x1d", " ", " b"]),
])
def test_the_documented_differences_on_examples(gpt2_pattern, text, ours, gpt2):
    assert pretokenize(text) == ours
    assert gpt2_pattern.findall(text) == gpt2


def test_tinyworld_has_none_of_the_characters_where_the_pretokenizers_differ():
    from utils.world import load_corpus
    corpus = load_corpus()
    chars = set("".join(corpus.train)) | set("".join(corpus.val))
    assert not {c for c in chars if _is_not_digit_number(c) or ord(c) in SEPARATORS}


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


def test_no_merge_ever_spans_a_special_token():
    texts = ["The end.<|endoftext|>Once upon a time.<|endoftext|>", "<|endoftext|><|endoftext|>It's |> <| me."] * 20
    tok = train_bpe(texts, N_BYTES + 60 + len(SPECIAL_TOKENS))
    merged = tok.vocab[N_BYTES:N_BYTES + len(tok.merges)]
    assert len(tok.merges) > 20
    assert not [m for m in merged if b"<|endoftext" in m or b"endoftext|>" in m or b".<" in m or b">O" in m]
    assert b"endoftext" not in merged and b".<|" not in merged
    # the counts behind the merges never saw the special token's characters
    pieces = {bytes(word) for word, _ in count_pretokens(texts, special_tokens=SPECIAL_TOKENS)}
    assert not [p for p in pieces if b"endoftext" in p or p.startswith(b".<")]
    assert b" |>" in pieces and b" <|" in pieces  # ... but text that merely *looks* special is ordinary text
    # negative control: without splitting, the special token's pieces are merged like any text
    unsplit = train_bpe(texts, N_BYTES + 60, special_tokens=())
    assert b"endoftext" in unsplit.vocab[N_BYTES:] and b".<|" in unsplit.vocab[N_BYTES:]


def test_course_tokenizer_makes_the_frequent_words_single_tokens(course_tok):
    """What the VOCAB_SIZE comment says: most word occurrences, but a minority of the distinct words."""
    from utils.world import load_corpus
    counts = Counter(p for story in load_corpus().train for p in pretokenize(story) if p.strip().isalpha())
    single = {p for p in counts if len(course_tok.encode(p)) == 1}
    assert len(single) / len(counts) < 0.5 < sum(counts[p] for p in single) / sum(counts.values())


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

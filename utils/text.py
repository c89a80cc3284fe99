"""Tokenizers: how text becomes the integer ids a language model reads.

A language model never sees letters; it sees a list of integers, one per
*token*. This module has three ways to cut text into tokens:

* ``split_chars``: one token per character. Tiny vocabulary, long sequences.
* ``split_words``: one token per word or punctuation mark. Short sequences, but
  a word never seen in training has no id, and spaces are lost.
* ``BPETokenizer``: **byte-level byte-pair encoding**, the course's tokenizer.
  Byte-pair encoding (Sennrich, Haddow & Birch 2016, "Neural Machine Translation
  of Rare Words with Subword Units") starts from single symbols and repeatedly
  merges the most frequent adjacent pair into a new symbol, so frequent words
  become one token and rare words stay spelled out in pieces. GPT-2 (Radford et
  al. 2019, "Language Models are Unsupervised Multitask Learners") runs it on
  the 256 *bytes* of UTF-8 instead of characters, so every string -- emoji,
  Chinese, an email address -- can be encoded and decoded back exactly.

Run ``python -m utils.text`` to train the course tokenizer on the TinyWorld
training stories and write ``data/tokenizer.json``; ``load_tokenizer()``
reads it back.
"""
from __future__ import annotations

import hashlib
import json
import operator
import re
import time
from collections import Counter
from pathlib import Path

#: Every tokenizer starts with one token per byte value, so any text encodes.
N_BYTES = 256

#: The course's total vocabulary: 256 bytes + 250 merges + 6 special tokens.
#: 250 merges make the *frequent* TinyWorld words single tokens -- most word
#: occurrences in the corpus, though only a minority of its few hundred distinct
#: words (rare names stay in pieces; notebook 01 measures both shares, and
#: tests/test_text.py checks them) -- and keep the output layer of the tiny GPT
#: cheap on a laptop CPU.
VOCAB_SIZE = 512

#: Special tokens: single ids that mark structure, never made by merging text.
#: ``<|endoftext|>`` separates stories (GPT-2's name for it); the chat tokens
#: frame turns (notebook 06 on); ``<|memory|>`` marks saved memories put into
#: the context (notebook 09); ``<|pad|>`` fills up short rows of a batch.
SPECIAL_TOKENS = ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", "<|memory|>", "<|pad|>")

#: The pre-tokenizer: GPT-2's pattern, rewritten for Python's ``re`` (which has
#: no ``\p{L}``). Its branches: contractions, a word with its leading space,
#: digits, punctuation (the ``_`` is listed because ``\w`` contains it), and
#: runs of whitespace. Every character matches one branch, so joining the pieces
#: gives back the text. Merges never cross a piece, so " cat" and " cat." share
#: the token " cat".
#:
#: It is *not* identical to GPT-2's (Radford et al. 2019; openai/gpt-2
#: ``encoder.py``: ``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``
#: with the ``regex`` module). Exactly two classes of characters differ
#: (tests/test_text.py checks every code point):
#:
#: * numbers that are not decimal digits -- Unicode categories No and Nl:
#:   superscripts ``²``, fractions ``½``, circled ``①``, Roman numerals ``Ⅻ`` --
#:   count as *letters* here (``[^\W\d_]`` keeps them, because ``str.isalnum``
#:   is true for them), as *numbers* in GPT-2: "x²" is one piece here, "x" + "²" there;
#: * U+001C..U+001F (the ASCII file/group/record/unit separators) are whitespace
#:   for Python's ``\s``, but not for Unicode's White_Space property that GPT-2's
#:   ``\s`` uses, where they are punctuation.
#:
#: (Checked against the ``regex`` module itself for every code point that the
#: running Python's Unicode database knows; ``regex`` ships its own, often newer,
#: Unicode data, so a character assigned after that version is a letter or digit
#: there but punctuation here.)
#:
#: TinyWorld's text contains none of these characters, so the course tokenizer
#: is the same either way; the pattern is kept as it is because every shipped
#: checkpoint depends on ``data/tokenizer.json``, which stores it.
PRETOKEN_PATTERN = r"""'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""

FORMAT = "how-chatgpt-learns/byte-level-bpe/v1"
TOKENIZER_FILE = "tokenizer.json"
REBUILD_HINT = "Rebuild it with `python -m utils.text` from the repository root."
_CACHE_LIMIT = 100_000  # pre-tokens remembered by encode(); bounds memory on huge inputs

Pair = tuple[int, int]


# ----------------------------------------------------------------------------
# character- and word-level splitters, for comparison
# ----------------------------------------------------------------------------
def split_chars(text: str) -> list[str]:
    """Character-level tokens: one per Unicode character (lossless, but long)."""
    return list(text)


def split_words(text: str) -> list[str]:
    """Word-level tokens: words and punctuation marks; spaces are dropped.

    The classic NLP tokenizer. Short sequences, but not lossless, and a model
    can only use words that were in its training vocabulary.
    """
    return re.findall(r"\w+|[^\w\s]", text)


def pretokenize(text: str, pattern: str = PRETOKEN_PATTERN) -> list[str]:
    """Cut text into the pieces BPE works inside (GPT-2 style, see ``PRETOKEN_PATTERN``): ' lived', '.', ..."""
    return re.findall(pattern, text)


def to_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates survive too, so *any* str round-trips."""
    return text.encode("utf-8", errors="surrogatepass")


def bytes_to_text(data: bytes) -> str:
    """Inverse of ``to_bytes``; a character cut mid-way becomes U+FFFD instead of crashing."""
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------
# training: the BPE algorithm
# ----------------------------------------------------------------------------
def count_pretokens(texts, pattern: str = PRETOKEN_PATTERN,
                    special_tokens=()) -> list[tuple[tuple[int, ...], int]]:
    """Distinct pre-tokens as byte tuples, with how often each occurs.

    The corpus has hundreds of thousands of pre-tokens but only a few hundred
    distinct ones, so BPE counts pairs over the distinct ones, weighted by
    their count. Any of ``special_tokens`` found in a text is cut out first:
    a special token is one id of its own, so none of its characters may take
    part in a merge (not even with the text next to it, as in ".<|").
    """
    special_re = _alternation(special_tokens)
    counts = Counter()
    for text in texts:
        for chunk in special_re.split(text)[::2] if special_re else [text]:  # even positions: ordinary text
            counts.update(pretokenize(chunk, pattern))
    return [(tuple(to_bytes(piece)), n) for piece, n in counts.items()]


def add_pair_counts(pair_counts: Counter, word: tuple[int, ...], n: int) -> None:
    """Add ``n`` to the count of every adjacent pair in ``word`` (use n < 0 to remove)."""
    for pair in zip(word, word[1:]):
        pair_counts[pair] += n
        if pair_counts[pair] == 0:
            del pair_counts[pair]


def merge_pair(ids, pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` (left to right) by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def most_frequent_pair(pair_counts: Counter) -> Pair:
    """The pair to merge next: highest count; ties go to the smallest ids, so training is deterministic."""
    return min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))


def train_bpe(texts, vocab_size: int = VOCAB_SIZE, special_tokens=SPECIAL_TOKENS) -> BPETokenizer:
    """Learn byte-level BPE merges from ``texts`` until the vocabulary has ``vocab_size`` ids.

    vocab_size counts everything: 256 bytes + merges + special tokens. Each step
    merges the most frequent adjacent pair into a new id (Sennrich et al. 2016);
    pair counts are updated only for the words that contain the merged pair.
    The texts are split at ``special_tokens`` first, so no merge ever spans one.
    Stops early if no pair is left (every pre-token is a single token).
    """
    n_merges = vocab_size - N_BYTES - len(special_tokens)
    if n_merges < 0:
        raise ValueError(f"vocab_size={vocab_size} is too small: it must hold the {N_BYTES} bytes "
                         f"and {len(special_tokens)} special tokens, so at least "
                         f"{N_BYTES + len(special_tokens)}.")
    words = count_pretokens(texts, special_tokens=special_tokens)
    pair_counts = Counter()
    for word, n in words:
        add_pair_counts(pair_counts, word, n)
    merges = []
    while len(merges) < n_merges and pair_counts:
        pair, new_id = most_frequent_pair(pair_counts), N_BYTES + len(merges)
        words = [_merge_word(word, n, pair, new_id, pair_counts) for word, n in words]
        merges.append(pair)
    return BPETokenizer(merges, special_tokens)


def _merge_word(word, n, pair, new_id, pair_counts):
    """Merge ``pair`` inside one counted word, keeping ``pair_counts`` up to date."""
    if pair[0] not in word or pair[1] not in word:  # fast skip for most words
        return word, n
    merged = tuple(merge_pair(word, pair, new_id))
    if len(merged) != len(word):
        add_pair_counts(pair_counts, word, -n)
        add_pair_counts(pair_counts, merged, n)
    return merged, n


# ----------------------------------------------------------------------------
# the tokenizer
# ----------------------------------------------------------------------------
class TokenizerFileMissing(FileNotFoundError):
    """The tokenizer file is missing; the message says how to rebuild it."""


class BPETokenizer:
    """A byte-level BPE tokenizer: ids 0-255 are bytes, then one id per merge, then special tokens.

    Merge ``k`` (0-based) creates id ``256 + k`` from a pair of older ids, so
    every id stands for a fixed byte string. Encoding applies the merges in the
    order they were learned; decoding concatenates the byte strings.
    """

    def __init__(self, merges, special_tokens=SPECIAL_TOKENS, pattern: str = PRETOKEN_PATTERN):
        self.merges: list[Pair] = [(int(a), int(b)) for a, b in merges]
        self.pattern = pattern
        self.vocab: list[bytes] = [bytes([b]) for b in range(N_BYTES)]  # id -> the bytes it stands for
        for new_id, (a, b) in enumerate(self.merges, start=N_BYTES):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(f"merge {new_id - N_BYTES} = ({a}, {b}) uses an id that does not "
                                 f"exist yet (ids so far: 0..{new_id - 1}).")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {pair: new_id for new_id, pair in enumerate(self.merges, start=N_BYTES)}
        if len(set(special_tokens)) != len(special_tokens):
            raise ValueError(f"special tokens must be distinct, got {list(special_tokens)}")
        self.special_ids = {tok: len(self.vocab) + i for i, tok in enumerate(special_tokens)}
        self.vocab += [to_bytes(tok) for tok in special_tokens]
        self._special_re = _alternation(special_tokens)
        self._cache: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}: {N_BYTES} bytes + {len(self.merges)} merges"
                f" + {len(self.special_ids)} special tokens)")

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: the size of the model's input and output layers."""
        return len(self.vocab)

    # --- special token ids, by name ---------------------------------------
    def special_id(self, token: str) -> int:
        """Id of a special token such as ``"<|endoftext|>"``."""
        if token not in self.special_ids:
            raise KeyError(f"{token!r} is not a special token of this tokenizer; "
                           f"it has {list(self.special_ids)}.")
        return self.special_ids[token]

    eot_id = property(lambda self: self.special_id("<|endoftext|>"), doc="End of a story/text.")
    user_id = property(lambda self: self.special_id("<|user|>"), doc="Start of a user turn.")
    assistant_id = property(lambda self: self.special_id("<|assistant|>"), doc="Start of an assistant turn.")
    end_id = property(lambda self: self.special_id("<|end|>"), doc="End of a chat turn.")
    memory_id = property(lambda self: self.special_id("<|memory|>"), doc="Start of a saved memory.")
    pad_id = property(lambda self: self.special_id("<|pad|>"), doc="Padding in a batch.")

    # --- encode / decode --------------------------------------------------
    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Token ids for ``text``.

        With ``allow_special=False`` (the default, and the right choice for
        anything a user typed) the text "<|user|>" is spelled out in ordinary
        tokens, so a user cannot forge a chat turn. Code that builds a prompt
        passes ``allow_special=True`` to turn those strings into their single ids.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, but got {type(text).__name__} ({text!r:.60}). "
                            f"Hint: to encode a list of texts, call encode() on each one.")
        if not (allow_special and self._special_re):
            return self._encode_ordinary(text)
        ids = []
        for i, chunk in enumerate(self._special_re.split(text)):  # odd positions are special tokens
            ids += [self.special_ids[chunk]] if i % 2 else self._encode_ordinary(chunk)
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        ids = []
        for piece in pretokenize(text, self.pattern):
            ids += self._encode_piece(piece)
        return ids

    def _encode_piece(self, piece: str) -> list[int]:
        """Ids of one pre-token; cached, since the same few hundred words come back all the time."""
        ids = self._cache.get(piece)
        if ids is None:
            ids = self._apply_merges(list(to_bytes(piece)))
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[piece] = ids
        return ids

    def _apply_merges(self, ids: list[int]) -> list[int]:
        """Apply learned merges, earliest-learned first, until none applies (as GPT-2 does)."""
        no_merge = len(self.vocab)  # larger than every merge id
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, no_merge))
            if pair not in self.ranks:
                break
            ids = merge_pair(ids, pair, self.ranks[pair])
        return ids

    def decode(self, ids) -> str:
        """The text for a list of ids (special tokens come back as their text, e.g. "<|end|>")."""
        return bytes_to_text(b"".join(self.token_bytes(i) for i in _as_id_list(ids)))

    def token_bytes(self, token_id) -> bytes:
        """The bytes one id stands for, with a clear error for an id outside the vocabulary."""
        token_id = _as_id(token_id)
        if not 0 <= token_id < self.vocab_size:
            raise IndexError(f"token id {token_id} is out of range: valid ids are 0..{self.vocab_size - 1} "
                             f"(vocab_size={self.vocab_size}). Was it made by a different tokenizer?")
        return self.vocab[token_id]

    def pieces(self, ids) -> list[str]:
        """Each id as readable text, to show how a string was cut: ['This', ' is', ...]."""
        return [bytes_to_text(self.token_bytes(i)) for i in _as_id_list(ids)]

    # --- saving ------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything that defines this tokenizer, as plain JSON-ready data."""
        return {"format": FORMAT, "pattern": self.pattern, "merges": [list(p) for p in self.merges],
                "special_tokens": list(self.special_ids), "vocab_size": self.vocab_size}

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: equal fingerprints mean the same ids for every text.

        Checkpoints store it, so a model is never fed ids from another tokenizer.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def save(self, path) -> None:
        """Write the tokenizer as JSON (no pickle: safe to load), one merge per line."""
        data = self.to_dict()
        merges = data.pop("merges")
        lines = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in sorted(data.items())]
        lines += [' "merges": [', ",\n".join(f"  {json.dumps(pair)}" for pair in merges), " ]"]
        Path(path).write_text("{\n" + "\n".join(lines) + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path) -> BPETokenizer:
        """Read a tokenizer written by ``save``; says how to rebuild it if it is missing or broken."""
        path = Path(path)
        if not path.exists():
            raise TokenizerFileMissing(f"{path} is missing. {REBUILD_HINT}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}). {REBUILD_HINT}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} tokenizer file. {REBUILD_HINT}")
        tok = cls(data["merges"], tuple(data["special_tokens"]), data["pattern"])
        if tok.vocab_size != data["vocab_size"]:
            raise ValueError(f"{path} says vocab_size={data['vocab_size']} but its merges give "
                             f"{tok.vocab_size}. {REBUILD_HINT}")
        return tok


def _alternation(strings):
    """A regex matching any of ``strings`` (longest first), captured so re.split keeps them."""
    if not strings:
        return None
    return re.compile("(" + "|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True)) + ")")


def _as_id(token_id) -> int:
    try:
        return operator.index(token_id)  # ints, numpy ints, 0-d integer tensors
    except TypeError:
        raise TypeError(f"token ids must be integers, got {type(token_id).__name__} ({token_id!r:.40}).") from None


def _as_id_list(ids) -> list:
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"decode() needs a list of integer ids, got {type(ids).__name__}. "
                        f"Hint: encode() turns text into ids.")
    if hasattr(ids, "tolist"):  # a tensor or numpy array
        ids = ids.tolist()
    return list(ids)


# ----------------------------------------------------------------------------
# the course tokenizer on disk
# ----------------------------------------------------------------------------
def tokenizer_path() -> Path:
    from utils.paths import DATA_DIR
    return DATA_DIR / TOKENIZER_FILE


def load_tokenizer(path=None) -> BPETokenizer:
    """The course tokenizer, ``data/tokenizer.json`` (rebuild: ``python -m utils.text``)."""
    return BPETokenizer.load(path or tokenizer_path())


def train_course_tokenizer(vocab_size: int = VOCAB_SIZE) -> BPETokenizer:
    """Train the course tokenizer exactly as ``data/tokenizer.json`` was made."""
    from utils.world import load_corpus
    return train_bpe(load_corpus().train, vocab_size, SPECIAL_TOKENS)


def main(argv=None):  # pragma: no cover - thin CLI
    import argparse
    parser = argparse.ArgumentParser(description="Train the course's byte-level BPE on the TinyWorld "
                                                 "training stories and write data/tokenizer.json.")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    parser.add_argument("--out", type=Path, default=tokenizer_path())
    args = parser.parse_args(argv)
    start = time.perf_counter()
    tok = train_course_tokenizer(args.vocab_size)
    print(f"trained {tok} in {time.perf_counter() - start:.2f} s")
    tok.save(args.out)
    print(f"wrote {args.out}  fingerprint {tok.fingerprint()[:16]}")


if __name__ == "__main__":
    main()

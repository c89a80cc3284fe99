"""How fast is the course tokenizer? Run by hand: ``python bench/bpe_speed.py``.

Prints BPE training time on the TinyWorld training stories, encode throughput
(characters and tokens per second, cold cache and warm cache) and compression
(characters per token). Timings vary by machine; nothing here is asserted.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from utils.text import VOCAB_SIZE, split_words, train_bpe  # noqa: E402
from utils.world import load_corpus  # noqa: E402


def timed(fn, *args):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def encode_all(tok, stories):
    return [tok.encode(s) for s in stories]


def main():
    corpus = load_corpus()
    stories = corpus.train
    n_chars = sum(map(len, stories))
    print(f"corpus: {len(stories)} training stories, {n_chars / 1e6:.2f} M characters")

    tok, seconds = timed(train_bpe, stories, VOCAB_SIZE)
    print(f"train_bpe(vocab_size={VOCAB_SIZE}): {seconds:.2f} s  -> {tok}")

    for label in ("cold cache", "warm cache"):
        ids, seconds = timed(encode_all, tok, stories)
        n_tokens = sum(map(len, ids))
        print(f"encode ({label}): {seconds:.2f} s  {n_chars / seconds / 1e6:.2f} M chars/s  "
              f"{n_tokens / seconds / 1e6:.2f} M tokens/s")

    _, seconds = timed(lambda: [tok.decode(x) for x in ids])
    print(f"decode: {seconds:.2f} s  {n_tokens / seconds / 1e6:.2f} M tokens/s")

    n_words = sum(len(split_words(s)) for s in stories)
    print(f"compression: BPE {n_chars / n_tokens:.2f} chars/token, words {n_chars / n_words:.2f} "
          f"chars/token, characters 1.00 chars/token")


if __name__ == "__main__":
    main()

"""Sampling replies: one prompt at a time, prefix recomputed (before) vs batched + KV cache (after).

Run by hand: ``python bench/sampling_speed.py [--prompts 64] [--n 8] [--new-tokens 32] [--runs 3]``.

The load is RLHF-sized (notebooks 07-09 sample it hundreds of times): ``--prompts``
test-split fact / unknown / mean prompts, ``--n`` replies each, up to
``--new-tokens`` tokens, temperature 1, from the shipped SFT model; and a greedy
load (one reply per prompt). Timed, interleaved run by run so that background
load hits both alike, median of ``--runs``:

* BEFORE -- the baseline: the loop ``utils.chat`` used before the shared sampler
  (``_sample_one_prompt``, copied below): one prompt's ``n`` replies per batch, the
  whole prefix recomputed at every token. For the greedy load also the old
  ``evaluate.greedy_replies`` (prompts of equal length batched, still recomputed).
* AFTER -- ``utils.chat.sample_replies`` / ``utils.evaluate.greedy_replies``: every
  prompt and reply in one left-padded batch, each prompt read once into a KV cache.

Then agreement: greedy replies identical to the baseline's (count), and for the
sampled load the largest |log-prob difference| between what the sampler
recorded and ``reply_logprobs``' one-pass recomputation. Nothing is asserted.

About 1 minute on a quiet 2-core machine. On a busy one use ``--threads 1``: two
torch threads that share their cores with other jobs stall each other at every
small op, and the baseline's many small forward passes then take many times longer.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import torch  # noqa: E402

from utils.chat import prompt_ids, reply_logprobs, reply_text, sample_replies  # noqa: E402
from utils.chats import load_chats, split  # noqa: E402
from utils.checkpoints import SFT_MODEL, load_course_model  # noqa: E402
from utils.evaluate import greedy_replies  # noqa: E402
from utils.logprobs import token_logprobs  # noqa: E402
from utils.repro import torch_threads  # noqa: E402
from utils.sampling import sample_next  # noqa: E402
from utils.text import load_tokenizer  # noqa: E402

KINDS = ("fact", "unknown", "mean")


# ---------------------------------------------------------------------------
# BASELINE: the pre-refactor loops, copied here to be timed (the only copy; library code has none)
# ---------------------------------------------------------------------------
@torch.no_grad()
def baseline_sample_replies(model, tokenizer, prompts, n, max_new_tokens, temperature, generator=None):
    """Old ``chat.sample_replies``: prompt by prompt, ``(ids, logps)`` per reply."""
    model.eval()
    return [r for p in prompts for r in _baseline_one_prompt(model, tokenizer, p, n, max_new_tokens,
                                                             temperature, generator)]


def _baseline_one_prompt(model, tokenizer, prompt, n, max_new_tokens, temperature, generator):
    """Old ``chat._sample_one_prompt``: the n replies of one prompt, the prefix recomputed every token."""
    idx = torch.tensor([prompt_ids(tokenizer, prompt)]).repeat(n, 1)  # (n, P)
    done = torch.zeros(n, dtype=torch.bool)  # (n,)
    tokens, logps, alive = [], [], []
    for _ in range(max_new_tokens):
        logits = model(idx)[:, -1, :]  # (n, V): the whole prefix, again
        nxt = sample_next(logits, temperature, None, generator).masked_fill(done, tokenizer.pad_id)  # (n,)
        tokens.append(nxt)
        logps.append(token_logprobs(logits[:, None], nxt[:, None])[:, 0])  # (n,)
        alive.append(~done)
        done = done | (nxt == tokenizer.end_id)
        idx = torch.cat([idx, nxt[:, None]], dim=1)  # (n, P + t + 1)
        if bool(done.all()):
            break
    tokens, logps, alive = torch.stack(tokens, 1), torch.stack(logps, 1), torch.stack(alive, 1)  # (n, t)
    return [(tokens[i][alive[i]].tolist(), logps[i][alive[i]]) for i in range(n)]


@torch.no_grad()
def baseline_greedy_grouped(model, tokenizer, prompts, max_new_tokens):
    """Old ``evaluate.greedy_replies``: prompts of one token length per batch, prefix recomputed."""
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    groups = defaultdict(list)
    for i, p in enumerate(ids):
        groups[len(p)].append(i)
    out = [None] * len(prompts)
    for length, rows in groups.items():
        idx = torch.tensor([ids[i] for i in rows])  # (b, P)
        done = torch.zeros(len(rows), dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = model(idx)[:, -1, :].argmax(-1).masked_fill(done, tokenizer.end_id)  # (b,)
            done |= nxt == tokenizer.end_id
            idx = torch.cat([idx, nxt[:, None]], dim=1)
            if bool(done.all()):
                break
        for i, row in zip(rows, idx[:, length:].tolist()):
            out[i] = reply_text(tokenizer, row)
    return out


# ---------------------------------------------------------------------------
# the load, the timing
# ---------------------------------------------------------------------------
def rlhf_prompts(n_prompts: int) -> list[str]:
    """Test-split prompts, the kinds taken in turn (fact, unknown, mean, fact, ...) while they last."""
    by_kind = {k: [c.prompt for c in split(load_chats(), "test") if c.kind == k] for k in KINDS}
    out = []
    while len(out) < n_prompts and any(by_kind.values()):
        for k in KINDS:
            if by_kind[k] and len(out) < n_prompts:
                out.append(by_kind[k].pop(0))
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_model() -> str:
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown CPU"
    return next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8, help="replies per prompt (sampled load)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with torch_threads(args.threads):
        run(args)


def run(args):
    tok, model = load_tokenizer(), load_course_model(SFT_MODEL)
    prompts = rlhf_prompts(args.prompts)
    P, n, L = len(prompts), args.n, args.new_tokens
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}")
    print(f"SFT model; {P} test prompts ({', '.join(KINDS)}), up to {L} new tokens; median of {args.runs} runs")
    seed = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    loads = {
        f"sampled  {P} x {n}, T=1": (P * n, {
            "before: one prompt at a time": lambda: baseline_sample_replies(model, tok, prompts, n, L, 1.0, seed()),
            "after:  batched + KV cache": lambda: sample_replies(model, tok, prompts, n, L, 1.0,
                                                                 generator=seed())}),
        f"greedy   {P} x 1": (P, {
            "before: one prompt at a time": lambda: baseline_sample_replies(model, tok, prompts, 1, L, 0.0),
            "before: same-length batches": lambda: baseline_greedy_grouped(model, tok, prompts, L),
            "after:  batched + KV cache": lambda: greedy_replies(model, tok, prompts, [L] * P)}),
    }
    baseline_sample_replies(model, tok, prompts[:2], 2, 4, 1.0, seed())  # warm up both paths (one-off costs)
    sample_replies(model, tok, prompts[:2], 2, 4, 1.0, generator=seed())
    results = {}
    for name, (replies, fns) in loads.items():
        times = defaultdict(list)
        for _ in range(args.runs):  # interleaved: background load hits every path alike
            for label, fn in fns.items():
                seconds, results[name, label] = timed(fn)
                times[label].append(seconds)
        print(f"\n{name} ({replies} replies)")
        print(f"  {'path':<30} | {'median s':>8} | {'replies/s':>9} | {'speed-up':>8}")
        base = statistics.median(times[next(iter(fns))])
        for label in fns:
            med = statistics.median(times[label])
            print(f"  {label:<30} | {med:>8.2f} | {replies / med:>9.1f} | {base / med:>7.1f}x")
    agreement(model, tok, prompts, n, results, loads)


def agreement(model, tok, prompts, n, results, loads):
    sampled, greedy = list(loads)
    old_greedy = [reply_text(tok, ids) for ids, _ in results[greedy, "before: one prompt at a time"]]
    new_greedy = results[greedy, "after:  batched + KV cache"]
    grouped = results[greedy, "before: same-length batches"]
    same = sum(a == b for a, b in zip(old_greedy, new_greedy))
    print(f"\nagreement, greedy: {same} / {len(new_greedy)} replies identical to one-at-a-time "
          f"(and {sum(a == b for a, b in zip(grouped, new_greedy))} / {len(new_greedy)} to same-length batches)")
    with torch.no_grad():
        new = results[sampled, "after:  batched + KV cache"]
        diff_new = max(float((reply_logprobs(model, tok, r.prompt, r.ids) - r.token_logprobs).abs().max())
                       for r in new)
        old = results[sampled, "before: one prompt at a time"]
        diff_old = max(float((reply_logprobs(model, tok, prompts[i // n], ids) - lp).abs().max())
                       for i, (ids, lp) in enumerate(old))
    lengths = [len(r.ids) for r in new]
    print(f"agreement, sampled: max |log-prob - reply_logprobs recomputation| = {diff_new:.1e} after "
          f"({diff_old:.1e} before), over {len(new)} replies of {min(lengths)}-{max(lengths)} tokens "
          f"({sum(r.finished for r in new)} finished)")


if __name__ == "__main__":
    main()

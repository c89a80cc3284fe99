"""How fast does the reward model train, and what does sorting prompts by length buy?

Run by hand: ``python bench/reward_speed.py [--threads 2] [--steps 20]``. Prints the seconds
per training step of notebook 07's recipe (16 prompts x K answers, the shipped SFT body) for
``utils.reward.reward_loss_fn`` with 1 chunk (one batch padded to the step's longest answer)
and with 2, 4 and 8 length-sorted chunks, interleaved so background load hits them alike;
and checks that the chunked loss equals the one-batch loss. Asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from utils.chats import load_chats
from utils.checkpoints import SFT_MODEL, load_course_model
from utils.reward import REWARD, RewardModel, comparisons, labelled_prompts, reward_batches, reward_loss_fn
from utils.text import load_tokenizer
from utils.train import make_optimizer, train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--k", type=int, default=REWARD.k)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok, chats = load_tokenizer(), load_chats()
    sft = load_course_model(SFT_MODEL)
    recipe = replace(REWARD, prompts=200, k=args.k)
    prompts = comparisons(sft, tok, labelled_prompts(chats, recipe), recipe)
    batches = reward_batches(tok, prompts, recipe.per_step, seed=0, block_size=sft.config.block_size)
    variants = {chunks: reward_loss_fn(tok.pad_id, chunks) for chunks in (1, 2, 4, 8)}
    models = {c: RewardModel.from_chat_model(sft) for c in variants}
    opts = {c: make_optimizer(models[c], recipe.train) for c in variants}
    times = {c: [] for c in variants}
    for step in range(args.steps + 2):
        x, wins = batches(step)
        for chunks, loss_fn in variants.items():
            start = time.perf_counter()
            train_step(models[chunks], opts[chunks], loss_fn, x, wins, 1e-4, 1.0, False)
            if step >= 2:  # warm-up
                times[chunks].append(time.perf_counter() - start)
    x, wins = batches(0)
    with torch.no_grad():
        ref = variants[1](models[1], x, wins).item()
        err = max(abs(variants[c](models[1], x, wins).item() - ref) for c in variants)
    print(f"reward-model step: {recipe.per_step} prompts x K={args.k}, {args.threads} thread(s), "
          f"median of {args.steps} steps")
    for chunks, t in times.items():
        print(f"  {chunks} chunk(s): {statistics.median(t) * 1000:6.0f} ms/step "
              f"({statistics.median(times[1]) / statistics.median(t):.2f}x the one-batch step)")
    print(f"largest difference of the chunked loss from the one-batch loss: {err:.2e}")


if __name__ == "__main__":
    main()

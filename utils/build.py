"""Rebuild the course's checkpoints deterministically: ``make checkpoints``.

Notebooks 04 -> 06 -> ... each build on the model of the one before, but a
learner may open any notebook first. So the models are trained once by this
script, with the same recipes the notebooks use live, and shipped small in
``data/checkpoints/`` as safetensors files (no pickle: loading cannot run code).
A test checks that they still match the current model code, config and
tokenizer.

    python -m utils.build             # everything
    python -m utils.build pretrained  # one artifact
"""
from __future__ import annotations

import json
from dataclasses import replace

from utils import seed_everything
from utils.checkpoints import PRETRAINED
from utils.model import GPT, GPTConfig, save_model
from utils.paths import CHECKPOINT_DIR
from utils.sft import build_sft
from utils.text import load_tokenizer
from utils.train import TrainConfig, bf16_is_fast, eval_loss, load_lm_data, train

#: Pretraining recipe of notebook 04 (and of the shipped checkpoint).
PRETRAIN = TrainConfig(steps=1000, lr=3e-3, warmup_steps=50, eval_every=100, bf16=bf16_is_fast())
PRETRAIN_BATCH = 32  # sequences of 128 tokens per step: ~3,800 predicted tokens
PRETRAIN_SEED = 0

#: The scaling sweep of notebook 04: model sizes x training steps.
SCALING_SIZES = {"tiny": dict(n_layer=2, n_head=1, d_model=32),
                 "small": dict(n_layer=3, n_head=2, d_model=64),
                 "course": dict(n_layer=4, n_head=4, d_model=128)}
SCALING_STEPS = (100, 300, 1000)


def pretrain(cfg: GPTConfig | None = None, recipe: TrainConfig = PRETRAIN, data=None,
             tokenizer=None, progress: bool = True, evaluate=None, seed: int = PRETRAIN_SEED):
    """Train a GPT on TinyWorld with ``recipe``; return ``(model, history)``."""
    tokenizer = tokenizer or load_tokenizer()
    cfg = cfg or GPTConfig()
    data = data or load_lm_data(tokenizer, cfg.block_size)
    seed_everything(seed)
    model = GPT(cfg)
    if evaluate is None:
        evaluate = lambda m: {"val_loss": eval_loss(m, data.x_val, data.y_val)}  # noqa: E731
    history = train(model, data.batches(PRETRAIN_BATCH, seed), recipe, evaluate=evaluate,
                    progress=progress, desc="pretraining")
    return model, history


def build_pretrained() -> None:
    tokenizer = load_tokenizer()
    data = load_lm_data(tokenizer, GPTConfig().block_size)
    model, history = pretrain(data=data, tokenizer=tokenizer)
    val = eval_loss(model, data.x_val, data.y_val)
    save_model(model, PRETRAINED.path, tokenizer=tokenizer,
               extra_metadata={"val_loss": f"{val:.6f}", "floor": f"{data.floor:.6f}",
                               "recipe": json.dumps(PRETRAIN.__dict__, default=str)})
    print(f"pretrained: val loss {val:.4f}, floor {data.floor:.4f} ({val / data.floor - 1:+.2%}), "
          f"{history.tokens_per_second:,.0f} tokens/s -> {PRETRAINED.path}")


def scaling_point(size: str, steps: int, data, progress=False) -> dict:
    """Train one (model size, step budget) point of the scaling sweep."""
    cfg = GPTConfig(**SCALING_SIZES[size])
    recipe = replace(PRETRAIN, steps=steps, warmup_steps=min(50, steps // 5), eval_every=10**9)
    model, hist = pretrain(cfg, recipe, data=data, progress=progress, evaluate=lambda m: {})
    n_params = model.num_parameters() - cfg.vocab_size * cfg.d_model  # non-embedding, as Kaplan 2020
    return {"size": size, "steps": steps, "params": n_params, "tokens": hist.tokens,
            "flops": 6 * n_params * hist.tokens, "val_loss": eval_loss(model, data.x_val, data.y_val)}


def build_scaling() -> None:
    data = load_lm_data(load_tokenizer(), GPTConfig().block_size)
    points = []
    for size in SCALING_SIZES:
        for steps in SCALING_STEPS:
            points.append(scaling_point(size, steps, data))
            print(points[-1])
    (CHECKPOINT_DIR / "scaling.json").write_text(json.dumps(points, indent=1) + "\n")


#: In dependency order: the SFT model is fine-tuned from the pretrained one.
BUILDERS = {"pretrained": build_pretrained, "scaling": build_scaling, "sft": build_sft}


def main():  # pragma: no cover - thin CLI
    import argparse

    from utils.repro import setup
    parser = argparse.ArgumentParser(description="Rebuild data/checkpoints/ deterministically.")
    parser.add_argument("what", nargs="*", choices=[*BUILDERS, []], default=list(BUILDERS))
    args = parser.parse_args()
    setup(seed=0)
    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.what or BUILDERS:
        BUILDERS[name]()


if __name__ == "__main__":
    main()

"""Rebuild the course's data and checkpoints deterministically: ``make data``, ``make checkpoints``.

Notebooks 04 -> 06 -> ... each build on the model of the one before, but a
learner may open any notebook first. So the data is generated and the models
are trained once by this script, with the same recipes the notebooks use live
(imported from the module whose idea each is), and shipped small in ``data/``.
This module only rebuilds: it holds no recipe of its own. Tests check that the
shipped files still match today's code.

    python -m utils.build data tokenizer   # data/ (make data)
    python -m utils.build                  # every checkpoint (make checkpoints)
    python -m utils.build pretrained       # one artifact
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

from utils import feedback
from utils.chat import Reply
from utils.chats import build_chats, chats_jsonl, load_chats, split
from utils.checkpoints import (
    BIASED_REWARD_MODEL,
    PPO_MODEL,
    PRETRAINED,
    REWARD_MODEL,
    SFT_MODEL,
    load_course_model,
    save_model,
)
from utils.evaluate import behaviour, chat_eval
from utils.model import GPTConfig
from utils.paths import CHECKPOINT_DIR, DATA_DIR
from utils.pretrain import PRETRAIN, load_lm_data, pretrain, scaling_point, scaling_runs
from utils.repro import seed_everything
from utils.reward import (
    BIASED_REWARD,
    REWARD,
    accuracy_by,
    comparisons,
    expected_accuracy,
    labelled_prompts,
    noise_ceiling,
    prompt_scores,
    reward_accuracy,
    sweep_comparisons,
    test_comparisons,
    train_reward_model,
    what_differs,
)
from utils.rlhf import (
    DPO_BETAS,
    DPO_TRAIN,
    PPO_SWEEP,
    SWEEP_EVAL_AT,
    PPOConfig,
    dpo_pairs,
    measure_policy,
    reward_model_fn,
    rl_prompts,
    run_ppo,
    train_dpo,
)
from utils.sft import SFT, demonstrations, finetune
from utils.text import load_tokenizer, tokenizer_path, train_course_tokenizer
from utils.train import eval_loss
from utils.users import (
    AGREEABLE_SHARE,
    ATTACKERS,
    DPO_GRID,
    FEEDBACK_USERS,
    NEXT_VERSION_BETA,
    NEXT_VERSION_DPO,
    PER_USER_CAP,
    collect_pairs,
    deploy,
    gold_by_prompt,
    make_users,
    measure_version,
    pair_kinds,
    paired_gain,
    request_pool,
    train_next_version,
    validation_prompts,
)
from utils.world import STORY_SEPARATOR, WORLD_SEED, build_corpus


# ---------------------------------------------------------------------------
# data/
# ---------------------------------------------------------------------------
def data_files() -> dict[str, str]:
    """The text of every generated data file, by name."""
    corpus = build_corpus()
    world = corpus.world
    return {
        "tinyworld_train.txt": STORY_SEPARATOR.join(corpus.train) + STORY_SEPARATOR,
        "tinyworld_val.txt": STORY_SEPARATOR.join(corpus.val) + STORY_SEPARATOR,
        "tinyworld_nats.json": json.dumps({"train": [round(x, 9) for x in corpus.train_nats],
                                           "val": [round(x, 9) for x in corpus.val_nats]}),
        "tinyworld_chats.jsonl": chats_jsonl(build_chats(world)),
        "tinyworld_facts.json": json.dumps(
            {"characters": [{"name": c.name, "gender": c.gender, **c.facts} for c in world.characters],
             "unknown_names": world.unknown_names}, indent=1),
    }


def build_data(out_dir: Path = DATA_DIR) -> dict:
    """Write the corpus, chats, facts and a manifest (sizes, sha256) to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus()
    manifest = {"world_seed": WORLD_SEED, "entropy": corpus.world.exact_entropy(),
                "floor": corpus.floor, "files": {}}
    for name, text in data_files().items():
        data = text.encode()
        (out_dir / name).write_bytes(data)
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        print(f"{name:28s} {len(data) / 1e6:6.2f} MB  {manifest['files'][name]['sha256'][:12]}")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"entropy floor: {manifest['entropy']['nats_per_char']:.4f} nats/char "
          f"(val corpus {manifest['floor']['val_nats_per_char']:.4f})")
    return manifest


def build_tokenizer() -> None:
    """Train the course BPE on the shipped training stories: ``data/tokenizer.json``."""
    tok = train_course_tokenizer()
    tok.save(tokenizer_path())
    print(f"tokenizer: {tok} fingerprint {tok.fingerprint()[:16]} -> {tokenizer_path()}")


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------
def build_pretrained() -> None:
    tokenizer = load_tokenizer()
    data = load_lm_data(tokenizer, GPTConfig().block_size)
    model, history = pretrain(data=data, tokenizer=tokenizer)
    val = eval_loss(model, data.x_val, data.y_val)
    save_model(model, PRETRAINED.path, tokenizer=tokenizer,
               extra_metadata={"val_loss": f"{val:.6f}", "floor": f"{data.floor:.6f}",
                               "recipe": json.dumps(asdict(PRETRAIN), default=str)})
    print(f"pretrained: val loss {val:.4f}, floor {data.floor:.4f} ({val / data.floor - 1:+.2%}), "
          f"{history.tokens_per_second:,.0f} tokens/s -> {PRETRAINED.path}")


def build_scaling() -> None:
    """Train every (size, steps) point of ``pretrain.scaling_runs()``: notebook 04's sweep."""
    data = load_lm_data(load_tokenizer(), GPTConfig().block_size)
    points = []
    for size, steps in scaling_runs():
        points.append(scaling_point(size, steps, data))
        print(points[-1])
    (CHECKPOINT_DIR / "scaling.json").write_text(json.dumps(points, indent=1) + "\n")


def build_sft() -> None:
    """Fine-tune the shipped pretrained model with ``sft.SFT`` and save it."""
    tokenizer, chats = load_tokenizer(), load_chats()
    model = load_course_model(PRETRAINED)
    lm = load_lm_data(tokenizer, model.config.block_size)
    before = sft_summary(model, tokenizer, chats, lm)
    history = finetune(model, tokenizer, demonstrations(chats, SFT.seed), lm)
    after = sft_summary(model, tokenizer, chats, lm)
    save_model(model, SFT_MODEL.path, tokenizer=tokenizer,
               extra_metadata={"before": before, "after": after, "recipe": asdict(SFT),
                               "train_seconds": round(history.seconds, 1)})
    print(f"sft: test gold {before['gold']:.3f} -> {after['gold']:.3f}, format {before['format']:.2f} -> "
          f"{after['format']:.2f}, pretraining val loss {before['val_loss']:.4f} -> {after['val_loss']:.4f}, "
          f"{history.seconds:.0f} s -> {SFT_MODEL.path}")


def sft_summary(model, tokenizer, chats, lm) -> dict:
    """The numbers stored with the SFT checkpoint: test gold, format, honesty, held-out recall, story loss."""
    test, heldout = split(chats, "test"), split(chats, "heldout")
    res, held = chat_eval(model, tokenizer, test), chat_eval(model, tokenizer, heldout)
    return {"gold": round(res["gold"], 6), "format": round(res["format"], 6),
            "by_kind": {k: round(v, 6) for k, v in res["by_kind"].items()},
            "idk": round(behaviour(test, res)["idk"], 6),
            "heldout_right": round(behaviour(heldout, held)["fact_right"], 6),
            "val_loss": round(eval_loss(model, lm.x_val, lm.y_val), 6)}


def build_reward(recipe=REWARD, artifact=REWARD_MODEL) -> None:
    """Train a reward model on the SFT model's answers ranked by the recipe's labelers; save it with
    its held-out accuracy and the labelers' noise ceiling on the same comparisons."""
    tokenizer, chats = load_tokenizer(), load_chats()
    chat_model = load_course_model(SFT_MODEL)
    train_set = comparisons(chat_model, tokenizer, labelled_prompts(chats, recipe), recipe)
    test_set = test_comparisons(chat_model, tokenizer, chats)  # fair labelers, for every model
    model, history = train_reward_model(chat_model, tokenizer, train_set, recipe)
    accuracy, ceiling = reward_accuracy(model, tokenizer, test_set), noise_ceiling(test_set)
    save_model(model, artifact.path, tokenizer=tokenizer,
               extra_metadata={"test_accuracy": round(accuracy, 6), "test_ceiling": round(ceiling, 6),
                               "recipe": asdict(recipe), "train_seconds": round(history.seconds, 1)})
    print(f"{artifact.name}: held-out pairwise accuracy {accuracy:.3f}, noise ceiling {ceiling:.3f}, "
          f"{history.seconds:.0f} s -> {artifact.path}")


def build_biased_reward() -> None:
    build_reward(BIASED_REWARD, BIASED_REWARD_MODEL)


def build_reward_sweep() -> None:
    """Notebook 07's sweep: held-out accuracy of reward models trained on ``SWEEP_PROMPTS`` labelled
    prompts with ``SWEEP_K`` answers each (the same prompts for every K)."""
    tokenizer, chats = load_tokenizer(), load_chats()
    chat_model = load_course_model(SFT_MODEL)
    test_set = test_comparisons(chat_model, tokenizer, chats)
    points = []
    for n, k, train_set in sweep_comparisons(chat_model, tokenizer, chats):
        model, history = train_reward_model(chat_model, tokenizer, train_set, replace(REWARD, k=k, prompts=n),
                                            progress=False)
        scores = prompt_scores(model, tokenizer, test_set)
        by_difference = accuracy_by(test_set, scores, what_differs)
        points.append({"prompts": n, "k": k, "pairs": n * k * (k - 1) // 2,
                       "test_accuracy": round(expected_accuracy(test_set, scores), 6),
                       **{f"{label}_accuracy": round(acc, 6) for label, (_, _, acc) in by_difference.items()},
                       "seconds": round(history.seconds, 1)})
        print(points[-1])
    (CHECKPOINT_DIR / "reward_sweep.json").write_text(json.dumps(
        {"test_ceiling": round(noise_ceiling(test_set), 6),
         **{f"{label}_ceiling": round(c, 6) for label, (_, c, _) in
            accuracy_by(test_set, [list(p.gold) for p in test_set], what_differs).items()},
         "points": points}, indent=1) + "\n")


def build_ppo() -> None:
    """Notebook 08's PPO run (``PPOConfig()`` against the fair reward model): the deployed v1."""
    tokenizer, chats = load_tokenizer(), load_chats()
    sft, rm = load_course_model(SFT_MODEL), load_course_model(REWARD_MODEL)
    cfg = PPOConfig()
    policy, history = run_ppo(sft, tokenizer, chats, rm, cfg, progress=False)
    test = rl_prompts(chats, "test")
    before, after = chat_eval(sft, tokenizer, test), chat_eval(policy, tokenizer, test)
    save_model(policy, PPO_MODEL.path, tokenizer=tokenizer,
               extra_metadata={"recipe": asdict(cfg), "history": _compact(history),
                               "test_gold_before": round(before["gold"], 6), "test_gold": round(after["gold"], 6),
                               "by_kind": {k: round(v, 6) for k, v in after["by_kind"].items()},
                               "train_seconds": round(history[-1]["seconds"], 1)})
    print(f"ppo: test gold {before['gold']:.3f} -> {after['gold']:.3f}, final KL {history[-1]['kl']:.2f} nats, "
          f"{history[-1]['seconds']:.0f} s -> {PPO_MODEL.path}")


def build_rlhf_sweep() -> None:
    """Notebook 08's map: each ``PPO_SWEEP`` run and DPO at each of ``DPO_BETAS``, measured on the test prompts."""
    tokenizer, chats = load_tokenizer(), load_chats()
    sft = load_course_model(SFT_MODEL)
    rms = {"fair": load_course_model(REWARD_MODEL), "biased": load_course_model(BIASED_REWARD_MODEL)}
    fns = {k: reward_model_fn(m, tokenizer) for k, m in rms.items()}
    test = rl_prompts(chats, "test")
    out = {"sft": {k: measure_policy(sft, sft, tokenizer, test, fn) for k, fn in fns.items()},
           "sft_test_gold": chat_eval(sft, tokenizer, test)["gold"], "ppo": {}, "dpo": {}}
    for name, (rm, beta) in PPO_SWEEP.items():
        policy, history = run_ppo(sft, tokenizer, chats, rms[rm], PPOConfig(beta_kl=beta), progress=False,
                                  evaluate=lambda p, fn=fns[rm]: measure_policy(p, sft, tokenizer, test, fn),
                                  eval_at=SWEEP_EVAL_AT)
        greedy = chat_eval(policy, tokenizer, test)
        trajectory = [{"step": h["step"], **h["eval"]} for h in history if "eval" in h]
        out["ppo"][name] = {"reward_model": rm, "beta_kl": beta, "history": _compact(history),
                            "trajectory": trajectory,
                            "test_gold": greedy["gold"], "by_kind": greedy["by_kind"],
                            "top_replies": _top_replies(test, greedy, fns),
                            "final": {k: measure_policy(policy, sft, tokenizer, test, fn) for k, fn in fns.items()}}
        print(name, out["ppo"][name]["final"]["fair"], f"{history[-1]['seconds']:.0f} s")
    pairs = dpo_pairs(comparisons(sft, tokenizer, labelled_prompts(chats, REWARD), REWARD))
    for beta in DPO_BETAS:
        policy = copy.deepcopy(sft)
        history = train_dpo(policy, sft, tokenizer, pairs, beta, DPO_TRAIN, progress=False)
        out["dpo"][str(beta)] = {"beta": beta, "final_loss": round(sum(history.train_loss[-10:]) / 10, 6),
                                 "test_gold": chat_eval(policy, tokenizer, test)["gold"],
                                 "final": measure_policy(policy, sft, tokenizer, test, fns["fair"]),
                                 "seconds": round(history.seconds, 1)}
        print("dpo", beta, out["dpo"][str(beta)])
    out["dpo_pairs"] = len(pairs)
    (CHECKPOINT_DIR / "rlhf_sweep.json").write_text(json.dumps(out, indent=1) + "\n")


def build_feedback_runs() -> None:
    """Notebook 09's versions and risks: v1 -> v2 -> v3 on honest users' feedback; v2 on agreeable
    users' feedback (sycophancy); v2 with a few attackers (poisoning), with and without the per-user cap."""
    tokenizer, chats = load_tokenizer(), load_chats()
    v1 = load_course_model(PPO_MODEL)
    pool = request_pool(chats)
    out = {"v1": measure_version(v1, v1, tokenizer, chats), "runs": {}}
    print("v1", out["v1"])

    def run(name, users, model=v1, seed=0, **kw):
        db = feedback.connect()
        deploy(db, model, tokenizer, users, pool, name, seed)
        pairs = collect_pairs(db, users, **kw)
        nxt = train_next_version(model, tokenizer, pairs, seed=seed)
        out["runs"][name] = {**pair_kinds(pairs), **kw, "measured": measure_version(nxt, v1, tokenizer, chats)}
        print(name, out["runs"][name])
        return nxt

    honest = make_users(FEEDBACK_USERS, 0)
    v2 = run("v2", honest)
    run("v3", honest, model=v2, seed=1)
    run("v2_agreeable", make_users(FEEDBACK_USERS, 0, agreeable=AGREEABLE_SHARE))
    for k in ATTACKERS:
        run(f"v2_attackers_{k}", make_users(FEEDBACK_USERS, 0, malicious=k))
        run(f"v2_attackers_{k}_capped", make_users(FEEDBACK_USERS, 0, malicious=k), max_per_user=PER_USER_CAP)
    run("v2_capped", honest, max_per_user=PER_USER_CAP)
    (CHECKPOINT_DIR / "feedback_runs.json").write_text(json.dumps(out, indent=1) + "\n")


def build_feedback_tuning() -> None:
    """How the next version's DPO setting was chosen: each (lr, steps) of ``DPO_GRID`` trained on notebook
    09's pairs, its sampled-gold gain over v1 on validation prompts (train prompts nobody asked) -- the
    choice -- and on the test prompts (reported, not used to choose)."""
    tokenizer, chats = load_tokenizer(), load_chats()
    v1 = load_course_model(PPO_MODEL)
    pool, people, db = request_pool(chats), make_users(FEEDBACK_USERS, 0), feedback.connect()
    deploy(db, v1, tokenizer, people, pool, "v1", 0)
    pairs = collect_pairs(db, people)
    sets = {"validation": validation_prompts(chats, pool), "test": rl_prompts(chats, "test")}
    base = {k: gold_by_prompt(v1, tokenizer, rows, n=8, seed=1) for k, rows in sets.items()}
    out = {"pairs": len(pairs), "beta": NEXT_VERSION_BETA, "prompts": {k: len(v) for k, v in sets.items()}, "grid": []}
    for lr, steps in DPO_GRID:
        nxt = copy.deepcopy(v1)
        seed_everything(0)
        train_dpo(nxt, v1, tokenizer, pairs, NEXT_VERSION_BETA, replace(NEXT_VERSION_DPO, lr=lr, steps=steps),
                  progress=False)
        gains = {k: paired_gain(base[k], gold_by_prompt(nxt.eval(), tokenizer, rows, n=8, seed=1))
                 for k, rows in sets.items()}
        out["grid"].append({"lr": lr, "steps": steps, **gains})
        print(lr, steps, gains)
    (CHECKPOINT_DIR / "feedback_tuning.json").write_text(json.dumps(out, indent=1) + "\n")


def _top_replies(chats, result, reward_fns, top: int = 6) -> list[dict]:
    """A policy's most frequent greedy replies, with their gold and proxy rewards."""

    counts = Counter(result["replies"]).most_common(top)
    out = []
    for text, count in counts:
        i = result["replies"].index(text)
        reply = [Reply(chats[i].prompt, text, [], True, 0.0, None)]
        out.append({"text": text, "count": count, "kind": chats[i].kind, "gold": result["scores"][i].total,
                    **{k: float(fn([chats[i]], reply)[0]) for k, fn in reward_fns.items()}})
    return out


def _compact(history: list[dict]) -> list[dict]:
    return [{k: round(h[k], 5) for k in ("reward", "kl", "gold", "length")} for h in history]


#: In dependency order: the tokenizer is trained on the data, the SFT model
#: is fine-tuned from the pretrained one.
DATA_BUILDERS = {"data": build_data, "tokenizer": build_tokenizer}
CHECKPOINT_BUILDERS = {"pretrained": build_pretrained, "scaling": build_scaling, "sft": build_sft,
                       "reward": build_reward, "reward_length_biased": build_biased_reward,
                       "reward_sweep": build_reward_sweep, "ppo": build_ppo, "rlhf_sweep": build_rlhf_sweep,
                       "feedback_runs": build_feedback_runs, "feedback_tuning": build_feedback_tuning}
BUILDERS = {**DATA_BUILDERS, **CHECKPOINT_BUILDERS}


def main(argv=None):  # pragma: no cover - thin CLI
    import argparse

    from utils.repro import setup
    parser = argparse.ArgumentParser(description="Rebuild data/ and data/checkpoints/ deterministically.")
    parser.add_argument("what", nargs="*", choices=[*BUILDERS, []], default=list(CHECKPOINT_BUILDERS),
                        help="what to rebuild (default: every checkpoint)")
    args = parser.parse_args(argv)
    setup(seed=0)
    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.what or CHECKPOINT_BUILDERS:
        BUILDERS[name]()


if __name__ == "__main__":
    main()

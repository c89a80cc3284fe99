"""utils.checkpoints: the safe file format, and the shipped models match today's code and hold their lesson."""
import pytest
import torch
from conftest import TINY_CONFIG, make_gpt, random_tokens

from utils.checkpoints import (
    ARTIFACTS,
    PRETRAINED,
    SFT_MODEL,
    Artifact,
    CheckpointMismatchError,
    MissingCheckpointError,
    load_course_model,
    load_model,
    load_scaling,
    read_checkpoint_metadata,
    save_model,
)
from utils.model import GPT, GPTConfig, parameter_checksum
from utils.pretrain import SCALING_SIZES, load_lm_data, matmul_params, scaling_runs, train_flops_per_token
from utils.reward import RewardModel
from utils.train import eval_loss


# ---------------------------------------------------------------- the file format
def test_save_load_round_trip(tmp_path):
    model = make_gpt(seed=5)
    path = save_model(model, tmp_path / "tiny.safetensors", extra_metadata={"steps": 3}, tokenizer="abc123")
    loaded = load_model(path, expected_config=TINY_CONFIG, expected_tokenizer="abc123")
    idx = random_tokens(2, 16)
    assert torch.equal(model(idx), loaded(idx))
    assert loaded.head.weight is loaded.tok_emb.weight
    assert parameter_checksum(loaded) == parameter_checksum(model)
    meta = read_checkpoint_metadata(path)
    assert meta["config"] == TINY_CONFIG and meta["extra"] == {"steps": 3}
    assert meta["tokenizer_fingerprint"] == "abc123"
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, then a JSON header (no pickle)


def test_a_reward_model_round_trips_and_is_never_loaded_as_another_class(tmp_path):
    rm = RewardModel.from_chat_model(make_gpt(seed=2))
    torch.nn.init.normal_(rm.value_head.weight)
    path = save_model(rm, tmp_path / "rm.safetensors")
    loaded = load_model(path, expected_class=RewardModel)
    idx, last = random_tokens(2, 16), torch.tensor([15, 7])
    assert isinstance(loaded, RewardModel) and torch.equal(rm(idx, last), loaded(idx, last))
    assert read_checkpoint_metadata(path)["architecture"] == "RewardModel"
    with pytest.raises(CheckpointMismatchError, match="holds a RewardModel, not a GPT"):
        load_model(path, expected_class=GPT)
    with pytest.raises(CheckpointMismatchError, match="holds a GPT, not a RewardModel"):
        load_model(save_model(make_gpt(seed=2), tmp_path / "lm.safetensors"), expected_class=RewardModel)


def test_save_load_untied(tmp_path):
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, d_model=16, tie_weights=False)
    model = make_gpt(cfg)
    loaded = load_model(save_model(model, tmp_path / "u.safetensors"))
    idx = random_tokens(1, 8)
    assert torch.equal(model(idx), loaded(idx))


def test_load_with_wrong_config_names_the_field(tmp_path):
    path = save_model(make_gpt(), tmp_path / "tiny.safetensors")
    with pytest.raises(CheckpointMismatchError, match="n_layer: checkpoint has 2, expected 3"):
        load_model(path, expected_config=GPTConfig(vocab_size=64, block_size=16, n_layer=3, n_head=2,
                                                   d_model=16))
    with pytest.raises(CheckpointMismatchError, match="d_model: checkpoint has 16, expected 32"):
        load_model(path, expected_config={"d_model": 32})
    with pytest.raises(ValueError, match="unknown field"):
        load_model(path, expected_config={"width": 32})


def test_load_with_wrong_tokenizer(tmp_path):
    path = save_model(make_gpt(), tmp_path / "tiny.safetensors", tokenizer="aaa")
    with pytest.raises(CheckpointMismatchError, match="tokenizer fingerprint 'aaa'.*'bbb'"):
        load_model(path, expected_tokenizer="bbb")


def test_load_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(MissingCheckpointError, match="Rebuild it with `make checkpoints`"):
        load_model(tmp_path / "nope.safetensors")


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointMismatchError, match="not a course GPT checkpoint"):
        load_model(tmp_path / "other.safetensors")


# ---------------------------------------------------------------- the shipped models
@pytest.mark.parametrize("artifact", list(ARTIFACTS.values()), ids=lambda a: a.name)
def test_shipped_checkpoint_matches_code_config_and_tokenizer(artifact, tok):
    meta = read_checkpoint_metadata(artifact.path)
    assert meta["config"] == GPTConfig(), "config changed: rebuild with `make checkpoints`"
    assert meta["tokenizer_fingerprint"] == tok.fingerprint()
    load_course_model(artifact.name)  # strict load: every tensor name and shape matches the code


def test_sft_checkpoint_records_before_and_after():
    assert {"before", "after", "recipe"} <= set(read_checkpoint_metadata(SFT_MODEL.path)["extra"])


def test_unknown_or_missing_artifact_names_the_fix(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"no shipped model called 'sfft'.*'pretrained'.*'reward'.*'sft'"):
        load_course_model("sfft")
    with pytest.raises(MissingCheckpointError, match="make checkpoints"):
        load_course_model(Artifact("not_built_yet"))
    monkeypatch.setattr("utils.checkpoints.CHECKPOINT_DIR", tmp_path)
    with pytest.raises(MissingCheckpointError, match="make checkpoints"):
        load_course_model("sft")
    with pytest.raises(MissingCheckpointError, match="make checkpoints"):
        load_scaling()


@pytest.mark.slow
def test_pretrained_checkpoint_is_within_5_percent_of_the_floor(tok, two_threads):
    data = load_lm_data(tok, GPTConfig().block_size)
    val = eval_loss(load_course_model(PRETRAINED), data.x_val, data.y_val)
    assert data.floor < val < 1.05 * data.floor


def test_scaling_sweep_is_current_and_loss_falls_with_compute_for_every_size():
    points = load_scaling()
    assert [(p["size"], p["steps"]) for p in points] == scaling_runs(), "rebuild: python -m utils.build scaling"
    for p in points:  # today's FLOPs convention
        cfg = GPTConfig(**SCALING_SIZES[p["size"]])
        assert p["params"] == matmul_params(cfg) and p["flops"] == train_flops_per_token(cfg) * p["tokens"]
    for size in SCALING_SIZES:
        mine = sorted((p for p in points if p["size"] == size), key=lambda p: p["flops"])
        losses = [p["val_loss"] for p in mine]
        assert losses == sorted(losses, reverse=True), f"{size}: loss should fall as compute grows"


def test_reward_checkpoints_record_their_held_out_accuracy_below_the_ceiling():
    from utils.checkpoints import BIASED_REWARD_MODEL, REWARD_MODEL
    for artifact in (REWARD_MODEL, BIASED_REWARD_MODEL):
        extra = read_checkpoint_metadata(artifact.path)["extra"]
        assert 0.5 < extra["test_accuracy"] < extra["test_ceiling"], artifact.name
    assert read_checkpoint_metadata(BIASED_REWARD_MODEL.path)["extra"]["recipe"]["biased_share"] > 0


def test_reward_checkpoints_were_made_with_todays_recipes():
    import json
    from dataclasses import asdict

    from utils.checkpoints import BIASED_REWARD_MODEL, REWARD_MODEL
    from utils.reward import BIASED_REWARD, REWARD
    for artifact, recipe in ((REWARD_MODEL, REWARD), (BIASED_REWARD_MODEL, BIASED_REWARD)):
        shipped = read_checkpoint_metadata(artifact.path)["extra"]["recipe"]
        assert shipped == json.loads(json.dumps(asdict(recipe))), f"{artifact.name} is stale: make checkpoints"


def test_reward_sweep_is_current_and_more_answers_per_prompt_help_with_few_prompts():
    import json

    from utils.paths import CHECKPOINT_DIR
    from utils.reward import SWEEP_K, SWEEP_PROMPTS
    sweep = json.loads((CHECKPOINT_DIR / "reward_sweep.json").read_text())
    points = {(q["prompts"], q["k"]): q["test_accuracy"] for q in sweep["points"]}
    assert set(points) == {(n, k) for n in SWEEP_PROMPTS for k in SWEEP_K}, "rebuild: make checkpoints"
    fewest = min(SWEEP_PROMPTS)
    assert points[(fewest, max(SWEEP_K))] > points[(fewest, min(SWEEP_K))] + 0.02


def test_ppo_checkpoint_was_made_with_todays_recipe_and_held_gold():
    import json
    from dataclasses import asdict

    from utils.checkpoints import PPO_MODEL
    from utils.rlhf import PPOConfig
    extra = read_checkpoint_metadata(PPO_MODEL.path)["extra"]
    assert extra["recipe"] == json.loads(json.dumps(asdict(PPOConfig()))), "ppo is stale: make checkpoints"
    assert len(extra["history"]) == PPOConfig().steps
    assert extra["history"][-1]["reward"] > extra["history"][0]["reward"], "PPO should raise the proxy reward"
    assert abs(extra["test_gold"] - extra["test_gold_before"]) < 0.03, "the KL penalty should hold gold near SFT"


def test_rlhf_sweep_is_current():
    import json

    from utils.paths import CHECKPOINT_DIR
    from utils.rlhf import DPO_BETAS, PPO_SWEEP, SWEEP_EVAL_AT, PPOConfig
    sweep = json.loads((CHECKPOINT_DIR / "rlhf_sweep.json").read_text())
    assert {k: (v["reward_model"], v["beta_kl"]) for k, v in sweep["ppo"].items()} == \
        dict(PPO_SWEEP), "rebuild: python -m utils.build rlhf_sweep"
    assert all(len(v["history"]) == PPOConfig().steps for v in sweep["ppo"].values())
    assert all([t["step"] for t in v["trajectory"]] == list(SWEEP_EVAL_AT) for v in sweep["ppo"].values())
    assert sorted(float(b) for b in sweep["dpo"]) == sorted(DPO_BETAS)


def test_feedback_runs_are_current():
    import json

    from utils.paths import CHECKPOINT_DIR
    from utils.users import ATTACKERS, PER_USER_CAP
    runs = json.loads((CHECKPOINT_DIR / "feedback_runs.json").read_text())["runs"]
    expected = {"v2", "v3", "v2_agreeable", "v2_capped"} | {f"v2_attackers_{k}{c}" for k in ATTACKERS
                                                            for c in ("", "_capped")}
    assert set(runs) == expected, "rebuild: python -m utils.build feedback_runs"
    assert all(r.get("max_per_user") == PER_USER_CAP for name, r in runs.items() if name.endswith("capped"))
    assert [runs[f"v2_attackers_{k}"]["trigger"] for k in ATTACKERS] == sorted(
        runs[f"v2_attackers_{k}"]["trigger"] for k in ATTACKERS), "more attackers, more poisoned pairs"

"""utils.speedrun: the whole recipe runs end to end (at TINY size) and its report card says what it measured."""
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from utils.checkpoints import load_model
from utils.pretrain import PRETRAIN
from utils.reward import REWARD
from utils.rlhf import PPOConfig
from utils.sft import SFT
from utils.speedrun import STAGES, TINY, SpeedrunRecipe, report_markdown, speedrun
from utils.text import BPETokenizer
from utils.world import N_TRAIN_STORIES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("speedrun")
    return out, speedrun(TINY, out)


def test_the_default_recipe_is_the_course_recipe():
    recipe = SpeedrunRecipe()
    assert (recipe.pretrain, recipe.sft, recipe.reward, recipe.ppo) == (PRETRAIN, SFT, REWARD, PPOConfig())
    assert recipe.n_train_stories == N_TRAIN_STORIES and recipe.eval_prompts is None
    assert TINY != recipe  # the control: the comparison above can tell recipes apart


@pytest.mark.slow
def test_tiny_run_writes_the_report_card_and_a_loadable_policy(tiny_run):
    out, report = tiny_run
    for name in ("report.md", "report.json", "speedrun.png", "tokenizer.json", "pretrained.safetensors",
                 "sft.safetensors", "reward.safetensors", "ppo.safetensors"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text())["ppo"]["gold"] == report["ppo"]["gold"]
    tokenizer = BPETokenizer.load(out / "tokenizer.json")
    policy = load_model(out / "ppo.safetensors", expected_tokenizer=tokenizer)
    assert policy.config.block_size == TINY.model.block_size


@pytest.mark.slow
def test_tiny_run_measures_every_stage(tiny_run):
    _, report = tiny_run
    assert list(report["seconds"]) == ["world", "tokenizer", "pretraining", "SFT", "reward model", "PPO", "measuring"]
    assert all(s >= 0 for s in report["seconds"].values())
    assert report["total_seconds"] == pytest.approx(sum(report["seconds"].values()))
    assert report["eval_prompts"] == TINY.eval_prompts
    assert report["world"]["train_stories"] == TINY.n_train_stories
    for key, _ in STAGES:
        assert all(0 <= report[key][k] <= 1 for k in ("gold", "sampled_gold", "format")), key
    assert 0.5 <= report["reward"]["ceiling"] <= 1
    assert report["pretrain"]["val_loss"] > report["pretrain"]["floor"] > 0


@pytest.mark.slow
def test_the_report_card_prints_the_measured_numbers(tiny_run):
    out, report = tiny_run
    text = (out / "report.md").read_text()
    assert f"{report['ppo']['gold']:.3f}" in text and f"{report['reward']['ceiling']:.3f}" in text
    assert f"{report['pretrain']['floor']:.4f}" in text
    assert len(re.findall(r"^\| (world|tokenizer|pretraining|SFT|reward model|PPO|measuring) \|", text, re.M)) == 7


@pytest.mark.slow
def test_the_tiny_run_is_deterministic(tiny_run, tmp_path):
    _, first = tiny_run
    torch.manual_seed(123)  # whatever ran before: the run seeds itself
    again = speedrun(replace(TINY), tmp_path)
    for key in ("random", "pretrain", "sft", "ppo"):
        assert again[key]["gold"] == first[key]["gold"], key
        assert again[key]["sampled_gold"] == first[key]["sampled_gold"], key
    assert again["pretrain"]["val_loss"] == first["pretrain"]["val_loss"]
    assert again["reward"]["accuracy"] == first["reward"]["accuracy"]


def test_report_markdown_uses_the_numbers_it_is_given():
    stage = {"gold": 0.5, "format": 0.25, "sampled_gold": 0.375}
    report = {"seconds": {k: 1.0 for k in ("world", "tokenizer", "pretraining", "SFT", "reward model", "PPO",
                                            "measuring")}, "total_seconds": 420.0, "eval_prompts": 9,
              "world": {"train_stories": 10, "chats": 20}, "recipe": {"vocab_size": 512},
              "random": stage, "pretrain": {**stage, "val_loss": 0.5, "floor": 0.25},
              "sft": {**stage, "gold": 0.75, "val_loss": 0.5, "demonstrations": 3},
              "reward": {"accuracy": 0.625, "ceiling": 0.875, "pairs": 6},
              "ppo": {**stage, "gold": 0.8125, "final_kl": 0.5}}
    text = report_markdown(report)
    assert "**7.0 min**" in text and "| SFT | 1 | 0.750 | 0.375 |" in text and "| PPO | 1 | 0.812 |" in text
    assert "(+100.0%)" in text and "accuracy 0.625, noise ceiling 0.875" in text


def test_make_speedrun_runs_this_module():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^speedrun: .*\n\t\$\(BIN\)/python -m utils\.speedrun", makefile, re.M)

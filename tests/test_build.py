"""utils.build: the shipped data is exactly what the code builds today."""
import json

from utils.build import BUILDERS, build_data
from utils.paths import DATA_DIR


def test_shipped_data_matches_a_fresh_build(tmp_path):
    manifest = build_data(tmp_path)
    shipped = json.loads((DATA_DIR / "manifest.json").read_text())
    assert manifest == shipped, "data/ is stale: rebuild it with `make data`"
    for name, info in shipped["files"].items():
        assert (DATA_DIR / name).stat().st_size == info["bytes"]
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_every_artifact_has_a_builder_in_dependency_order():
    assert list(BUILDERS) == ["data", "tokenizer", "pretrained", "scaling", "sft", "reward",
                              "reward_length_biased", "reward_sweep", "ppo", "rlhf_sweep", "feedback_runs", "feedback_tuning"]

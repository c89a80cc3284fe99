"""The shipped checkpoints match today's code, config and tokenizer, and still hold their lesson."""
import pytest
import torch

from utils.checkpoints import PRETRAINED, load_course_model, load_scaling
from utils.model import GPTConfig, MissingCheckpointError, read_checkpoint_metadata
from utils.text import load_tokenizer
from utils.train import eval_loss, load_lm_data


@pytest.fixture(scope="module")
def lm_data():
    return load_lm_data(load_tokenizer(), GPTConfig().block_size)


def test_pretrained_checkpoint_matches_code_config_and_tokenizer():
    meta = read_checkpoint_metadata(PRETRAINED.path)
    assert meta["config"] == GPTConfig(), "config changed: rebuild with `make checkpoints`"
    assert meta["tokenizer_fingerprint"] == load_tokenizer().fingerprint()
    load_course_model(PRETRAINED)  # strict load: every tensor name and shape matches the code


@pytest.mark.slow
def test_pretrained_checkpoint_is_within_5_percent_of_the_floor(lm_data):
    torch.set_num_threads(2)
    model = load_course_model(PRETRAINED)
    val = eval_loss(model, lm_data.x_val, lm_data.y_val)
    assert lm_data.floor < val < 1.05 * lm_data.floor


def test_scaling_sweep_is_shipped():
    points = load_scaling()
    assert {p["size"] for p in points} == {"tiny", "small", "course"}
    assert all(p["val_loss"] > 0 and p["flops"] > 0 for p in points)


def test_missing_checkpoint_names_the_rebuild_command(tmp_path):
    from utils.model import load_model
    with pytest.raises(MissingCheckpointError, match="make checkpoints"):
        load_model(tmp_path / "nope.safetensors")

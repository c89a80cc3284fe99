"""The course's shipped checkpoints: where they live and how to load them safely.

Each artifact is a safetensors file in ``data/checkpoints/`` made by
``make checkpoints`` (``utils.build``). Loading checks the file against today's
model config and tokenizer and, when anything is missing or stale, says which
command rebuilds it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from utils.model import GPT, GPTConfig, MissingCheckpointError, load_model
from utils.paths import CHECKPOINT_DIR
from utils.text import load_tokenizer


@dataclass(frozen=True)
class Artifact:
    """A shipped checkpoint, by name: ``data/checkpoints/<name>.safetensors``."""
    name: str

    @property
    def path(self):
        return CHECKPOINT_DIR / f"{self.name}.safetensors"


PRETRAINED = Artifact("pretrained")  # notebook 04's model
SFT_ARTIFACT = Artifact("sft")  # notebook 06's chat model


def load_course_model(artifact: Artifact = PRETRAINED) -> GPT:
    """Load a shipped checkpoint, checked against today's config and tokenizer.

    A missing file, or one made for another config or tokenizer, raises an
    error that names what differs and the command that rebuilds it.
    """
    return load_model(artifact.path, expected_config=GPTConfig(), expected_tokenizer=load_tokenizer())


def load_scaling() -> list[dict]:
    """The scaling sweep of notebook 04 (model size x training steps -> loss)."""
    path = CHECKPOINT_DIR / "scaling.json"
    if not path.exists():
        raise MissingCheckpointError(f"{path} is missing. Rebuild it with `make checkpoints` "
                                     f"(or `python -m utils.build scaling`).")
    return json.loads(path.read_text())

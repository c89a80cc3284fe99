"""Checkpoints: the safe file format, and every model the course ships.

A checkpoint is a ``safetensors`` file (no pickle: loading one cannot run code),
with the model's config and the tokenizer's fingerprint in the file's metadata,
so a checkpoint never meets a model or tokenizer it was not made for.

The shipped artifacts live in ``data/checkpoints/``, made by ``make checkpoints``
(``utils.build``). A learner may open any notebook first, so each loads what it
needs with ``load_course_model(name)``; a missing or stale file raises an error
that names what differs and the command that rebuilds it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from utils.model import GPT, GPTConfig
from utils.paths import CHECKPOINT_DIR
from utils.reward import RewardModel
from utils.text import load_tokenizer

__all__ = ["FORMAT", "save_model", "load_model", "read_checkpoint_metadata", "CheckpointMismatchError",
           "MissingCheckpointError", "Artifact", "PRETRAINED", "SFT_MODEL", "REWARD_MODEL", "BIASED_REWARD_MODEL", "PPO_MODEL",
           "ARTIFACTS", "ARCHITECTURES",
           "load_course_model", "load_scaling"]


# ---------------------------------------------------------------------------
# the file format: safetensors + config and tokenizer fingerprint
# ---------------------------------------------------------------------------
FORMAT = "how-chatgpt-learns/gpt/v1"
#: The model classes a checkpoint may hold (its ``architecture`` metadata), by name. Files saved
#: before the field existed hold a plain ``GPT``.
ARCHITECTURES = {cls.__name__: cls for cls in (GPT, RewardModel)}


class MissingCheckpointError(FileNotFoundError):
    """A checkpoint file is missing; the message says how to rebuild it."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was made for another model config or another tokenizer."""


def save_model(model: GPT, path, extra_metadata: dict | None = None, tokenizer=None) -> Path:
    """Write ``model``'s weights to ``path`` (.safetensors) with its config and tokenizer fingerprint.

    ``tokenizer``: the tokenizer object (its ``fingerprint()`` is stored) or a
    fingerprint string. ``extra_metadata``: any JSON-serialisable facts (training
    steps, validation loss, ...), read back by ``read_checkpoint_metadata``.
    A tied head is not stored twice: it is re-tied on load.
    """
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        del state["head.weight"]  # the same tensor as tok_emb.weight; safetensors refuses shared memory
    if type(model).__name__ not in ARCHITECTURES:
        raise TypeError(f"save_model saves {sorted(ARCHITECTURES)}, not a {type(model).__name__}.")
    metadata = {"format": FORMAT, "architecture": type(model).__name__, "config": json.dumps(model.config.to_dict(), sort_keys=True),
                "tokenizer_fingerprint": _fingerprint(tokenizer) or "",
                "extra": json.dumps(extra_metadata or {}, sort_keys=True)}
    save_file(state, str(path), metadata=metadata)
    return path


def read_checkpoint_metadata(path) -> dict:
    """``{"config": GPTConfig, "architecture": str, "tokenizer_fingerprint": str | None, "extra": dict}``."""
    from safetensors import safe_open
    path = _existing(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise CheckpointMismatchError(f"{path} is not a course GPT checkpoint (format "
                                      f"{meta.get('format')!r}, expected {FORMAT!r}). "
                                      f"Rebuild it with `make checkpoints`.")
    try:
        config = GPTConfig(**json.loads(meta["config"]))
    except TypeError as exc:  # fields this version of GPTConfig does not know
        raise CheckpointMismatchError(f"{path} was saved by another version of utils/model.py ({exc}). "
                                      f"Rebuild it with `make checkpoints`.") from exc
    architecture = meta.get("architecture", "GPT")
    if architecture not in ARCHITECTURES:
        raise CheckpointMismatchError(f"{path} holds a {architecture!r}, which this version of the course does "
                                      f"not know ({sorted(ARCHITECTURES)}). Rebuild it with `make checkpoints`.")
    return {"config": config, "architecture": architecture,
            "tokenizer_fingerprint": meta.get("tokenizer_fingerprint") or None,
            "extra": json.loads(meta.get("extra", "{}"))}


def load_model(path, expected_config=None, expected_tokenizer=None, device="cpu", expected_class=None) -> GPT:
    """Load a checkpoint written by ``save_model``; check it fits what you expect.

    ``expected_config``: a ``GPTConfig`` (or a dict of some of its fields) the
    checkpoint must match; a mismatch names every field that differs.
    ``expected_tokenizer``: a tokenizer or fingerprint string it must have been
    trained with. ``expected_class``: the model class it must hold (``GPT``, ``RewardModel``);
    by default, whichever its metadata names. The model is returned in eval mode.
    """
    from safetensors.torch import load_file
    meta = read_checkpoint_metadata(path)
    cfg = meta["config"]
    _check_config(path, cfg, expected_config)
    _check_tokenizer(path, meta["tokenizer_fingerprint"], expected_tokenizer)
    model_class = ARCHITECTURES[meta["architecture"]]
    if expected_class is not None and model_class is not expected_class:
        raise CheckpointMismatchError(f"{path} holds a {model_class.__name__}, not a {expected_class.__name__}: "
                                      f"load it as what it is, or pick the checkpoint you meant.")
    state = load_file(str(path), device=str(device))
    if cfg.tie_weights:
        state["head.weight"] = state["tok_emb.weight"]  # re-tie (load_state_dict copies into the shared tensor)
    model = model_class(cfg).to(device)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingCheckpointError(f"checkpoint {path} is missing. Rebuild it with `make checkpoints` "
                                     f"(run from the repository root).")
    return path


def _fingerprint(tokenizer) -> str | None:
    if tokenizer is None or isinstance(tokenizer, str):
        return tokenizer
    return str(tokenizer.fingerprint())


def _check_config(path, cfg: GPTConfig, expected) -> None:
    if expected is None:
        return
    want = expected.to_dict() if isinstance(expected, GPTConfig) else dict(expected)
    known = {f.name for f in fields(GPTConfig)}
    unknown = sorted(set(want) - known)
    if unknown:
        raise ValueError(f"expected_config has unknown field(s) {unknown}; GPTConfig fields: {sorted(known)}.")
    have = cfg.to_dict()
    diffs = [f"{k}: checkpoint has {have[k]!r}, expected {v!r}" for k, v in want.items() if have[k] != v]
    if diffs:
        raise CheckpointMismatchError(f"checkpoint {path} was saved with a different config ("
                                      + "; ".join(diffs) + "). Build the model with the checkpoint's "
                                      "config, or rebuild the checkpoint with `make checkpoints`.")


def _check_tokenizer(path, have: str | None, expected) -> None:
    want = _fingerprint(expected)
    if want is None or have == want:
        return
    raise CheckpointMismatchError(f"checkpoint {path} was trained with tokenizer fingerprint {have!r}, "
                                  f"but the tokenizer you passed has {want!r}: the same token id would mean "
                                  f"different text. Use the matching tokenizer, or rebuild the checkpoint "
                                  f"with `make checkpoints`.")


# ---------------------------------------------------------------------------
# the shipped artifacts
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Artifact:
    """A shipped checkpoint, by name: ``data/checkpoints/<name>.safetensors``, and what makes it."""
    name: str
    made_by: str = ""  # the notebook whose recipe trains it
    model_class: type = GPT  # what the file holds

    @property
    def path(self) -> Path:
        return CHECKPOINT_DIR / f"{self.name}.safetensors"


PRETRAINED = Artifact("pretrained", "notebook 04 (pretraining)")
SFT_MODEL = Artifact("sft", "notebook 06 (supervised fine-tuning)")
REWARD_MODEL = Artifact("reward", "notebook 07 (reward model, fair labelers)", RewardModel)
BIASED_REWARD_MODEL = Artifact("reward_length_biased", "notebook 07 (reward model, length-biased labelers)",
                               RewardModel)
PPO_MODEL = Artifact("ppo", "notebook 08 (RLHF with PPO: the deployed v1)")
ARTIFACTS = {a.name: a for a in (PRETRAINED, SFT_MODEL, REWARD_MODEL, BIASED_REWARD_MODEL, PPO_MODEL)}


def load_course_model(artifact: Artifact | str = PRETRAINED) -> GPT:
    """Load a shipped model (a name of ``ARTIFACTS`` or an ``Artifact``), checked against
    today's config and tokenizer; returned in eval mode.

    A missing file, or one made for another config or tokenizer, raises an
    error that names what differs and the command that rebuilds it.
    """
    if isinstance(artifact, str):
        if artifact not in ARTIFACTS:
            raise ValueError(f"no shipped model called {artifact!r}; the course ships {sorted(ARTIFACTS)}.")
        artifact = ARTIFACTS[artifact]
    return load_model(artifact.path, expected_config=GPTConfig(), expected_tokenizer=load_tokenizer(),
                      expected_class=artifact.model_class)


def load_scaling() -> list[dict]:
    """The scaling sweep of notebook 04 (model size x training steps -> loss)."""
    path = CHECKPOINT_DIR / "scaling.json"
    if not path.exists():
        raise MissingCheckpointError(f"{path} is missing. Rebuild it with `make checkpoints` "
                                     f"(or `python -m utils.build scaling`).")
    return json.loads(path.read_text())

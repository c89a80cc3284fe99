"""The chat format: how a conversation becomes the one token stream a GPT reads.

A pretrained GPT only continues text. To make it an *assistant*, InstructGPT
(Ouyang et al. 2022) and ChatGPT fine-tune it on conversations written in a
fixed template, so the model learns where the user's words stop and where its
own reply starts and ends. The template marks turns with **special tokens**:
single ids that ordinary text can never produce. That gives three guarantees
that plain-text markers ("User:", "Assistant:") cannot:

* the model sees exactly one unambiguous id where a turn starts or ends;
* a reply ends when the model writes ``<|end|>``, so generation knows when to stop;
* a user who *types* ``"<|assistant|>"`` gets it spelled out in ordinary byte
  tokens (``encode(..., allow_special=False)``), so they cannot forge a turn
  (a "prompt injection" through the template).

The course's template, ChatML-like in miniature::

    <|endoftext|> [<|memory|> memory <|end|>]
    <|user|> question <|end|> <|assistant|> reply <|end|>   (repeated per exchange)

``memory`` is the block of saved memories / custom instructions that the app
pastes into the context (notebook 09). It is the *only* way a "memory" reaches
the model: the weights do not change while you chat.

Used by SFT (notebook 06: the loss counts only the assistant's tokens), the
reward model (07), RLHF (08: sampling with log-probs, PPO, DPO, best-of-n) and
the deployed assistant (09).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from utils.logprobs import IGNORE, token_logprobs
from utils.sampling import sample

ROLES = ("user", "assistant")


# ---------------------------------------------------------------------------
# checking input
# ---------------------------------------------------------------------------
def as_conversation(conversation) -> list[dict]:
    """Check a conversation and return it as a list of turns; a str is one user turn.

    Turns are ``{"role": "user" | "assistant", "content": str}``, starting with
    the user and alternating, as in the template.
    """
    if isinstance(conversation, str):
        conversation = [{"role": "user", "content": conversation}]
    if not isinstance(conversation, (list, tuple)) or not conversation:
        raise ValueError(f"a conversation must be a non-empty list of turns like "
                         f"{{'role': 'user', 'content': 'Hi'}}; got {conversation!r:.80}.")
    for i, turn in enumerate(conversation):
        _check_turn(i, turn)
    return list(conversation)


def _check_turn(i: int, turn) -> None:
    if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
        raise ValueError(f"turn {i} must be a dict with 'role' and 'content', got {turn!r:.80}.")
    role, content = turn["role"], turn["content"]
    if role not in ROLES:
        raise ValueError(f"turn {i} has unknown role {role!r}; roles are {ROLES}.")
    if not isinstance(content, str):
        raise TypeError(f"turn {i} content must be a str, got {type(content).__name__} ({content!r:.40}).")
    expected = ROLES[i % 2]
    if role != expected:
        raise ValueError(f"turn {i} is from the {role!r} but should be from the {expected!r}: "
                         f"a conversation starts with the user and then alternates.")


def _check_memory(memory) -> None:
    if memory is not None and not isinstance(memory, str):
        raise TypeError(f"memory must be a str or None, got {type(memory).__name__} ({memory!r:.40}).")


# ---------------------------------------------------------------------------
# the template: encode and decode
# ---------------------------------------------------------------------------
def encode_conversation(tokenizer, conversation, memory: str | None = None) -> tuple[list[int], list[bool]]:
    """Token ids of a conversation in the chat template, and the assistant mask.

    ``assistant_mask[i]`` is True where token ``i`` is one the model must learn
    to *write*: the assistant's content and the ``<|end|>`` that closes it (so
    it learns to stop). Markers, memory and user tokens are False: they are
    given to the model, never predicted by it (InstructGPT's SFT loss).
    """
    conversation = as_conversation(conversation)
    _check_memory(memory)
    ids, mask = [tokenizer.eot_id], [False]
    if memory is not None:
        block = [tokenizer.memory_id, *tokenizer.encode(memory), tokenizer.end_id]
        ids, mask = ids + block, mask + [False] * len(block)
    for turn in conversation:
        marker = tokenizer.user_id if turn["role"] == "user" else tokenizer.assistant_id
        body = tokenizer.encode(turn["content"], allow_special=False) + [tokenizer.end_id]
        ids += [marker, *body]
        mask += [False] + [turn["role"] == "assistant"] * len(body)
    return ids, mask


def prompt_ids(tokenizer, conversation, memory: str | None = None) -> list[int]:
    """The conversation so far, then ``<|assistant|>``: the cue for the model to reply.

    ``conversation`` must end with a user turn (a str is one user turn).
    """
    conversation = as_conversation(conversation)
    if conversation[-1]["role"] != "user":
        raise ValueError("prompt_ids needs a conversation that ends with a user turn (the model "
                         f"answers the user), but the last of {len(conversation)} turns is the assistant's.")
    return encode_conversation(tokenizer, conversation, memory)[0] + [tokenizer.assistant_id]


def decode_conversation(tokenizer, ids) -> tuple[list[dict], str | None]:
    """Inverse of ``encode_conversation``: ids -> ``(conversation, memory)``.

    Padding is skipped. An unfinished last turn (no closing ``<|end|>``, e.g. a
    reply cut by the length limit) comes back with its text so far; the bare
    ``<|assistant|>`` cue at the end of ``prompt_ids`` is dropped.
    """
    ids = [i for i in (ids.tolist() if hasattr(ids, "tolist") else list(ids)) if i != tokenizer.pad_id]
    pos = 1 if ids[:1] == [tokenizer.eot_id] else 0
    roles = {tokenizer.user_id: "user", tokenizer.assistant_id: "assistant", tokenizer.memory_id: "memory"}
    conversation, memory = [], None
    while pos < len(ids):
        role = roles.get(ids[pos])
        if role is None or (role == "memory" and (conversation or memory is not None)):
            raise ValueError(f"token {pos} ({tokenizer.decode([ids[pos]])!r}) should start a turn "
                             f"(<|user|> or <|assistant|>; <|memory|> only first).")
        stop = ids.index(tokenizer.end_id, pos) if tokenizer.end_id in ids[pos:] else len(ids)
        text = tokenizer.decode(ids[pos + 1:stop])
        if role == "memory":
            memory = text
        elif stop > pos + 1 or stop < len(ids):  # drop a bare trailing <|assistant|> cue
            conversation.append({"role": role, "content": text})
        pos = stop + 1
    return conversation, memory


# ---------------------------------------------------------------------------
# supervised fine-tuning examples
# ---------------------------------------------------------------------------
def reply_token_ids(tokenizer, reply) -> list[int]:
    """A reply as the ids the model should write: text + ``<|end|>``, or given ids as they are.

    Pass ids (e.g. ``Reply.ids`` from sampling) to score exactly the tokens that
    were sampled; re-encoding their text could cut it into different tokens.
    """
    if isinstance(reply, str):
        return tokenizer.encode(reply, allow_special=False) + [tokenizer.end_id]
    return [int(i) for i in (reply.tolist() if hasattr(reply, "tolist") else reply)]


def sft_example(tokenizer, prompt, reply, block_size: int,
                memory: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One SFT row: inputs ``x`` (block_size,) and targets ``y`` (block_size,).

    ``prompt``: the user's text or a conversation ending with a user turn;
    ``reply``: the assistant's text (or its token ids). ``y[t]`` is the next
    token ``ids[t + 1]`` where that token belongs to the reply, else ``IGNORE``:
    the model is graded only on what the assistant says. Earlier assistant turns
    in ``prompt`` are context, not targets (``encode_conversation``'s mask covers
    every turn). Rows are padded with ``pad_id`` (inputs) and ``IGNORE`` (targets).
    """
    context = prompt_ids(tokenizer, prompt, memory)
    answer = reply_token_ids(tokenizer, reply)
    ids, mask = context + answer, [False] * len(context) + [True] * len(answer)
    n = len(ids) - 1  # model positions needed: every token but the last is an input
    if n > block_size:
        raise ValueError(f"this chat example is {len(ids)} tokens long, so it needs {n} positions, "
                         f"but block_size is {block_size}. Shorten the prompt or reply, or use a "
                         f"larger block_size.")
    x = torch.full((block_size,), tokenizer.pad_id, dtype=torch.long)  # (T,)
    y = torch.full((block_size,), IGNORE, dtype=torch.long)  # (T,)
    x[:n] = torch.tensor(ids[:-1])
    y[:n] = torch.tensor([t if m else IGNORE for t, m in zip(ids[1:], mask[1:])])
    return x, y


def sft_batch(tokenizer, pairs, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``sft_example`` rows: ``pairs`` of (prompt, reply) or (prompt, reply, memory) -> (N, T), (N, T)."""
    rows = [sft_example(tokenizer, *pair[:2], block_size, *pair[2:]) for pair in pairs]
    if not rows:
        raise ValueError("sft_batch needs at least one (prompt, reply) pair.")
    xs, ys = zip(*rows)
    return torch.stack(xs), torch.stack(ys)  # (N, T), (N, T)


# ---------------------------------------------------------------------------
# log-probabilities of replies
# ---------------------------------------------------------------------------
def reply_logprobs(model, tokenizer, prompt, reply_ids, memory: str | None = None) -> torch.Tensor:
    """Per-token log-probs (L,) of ``reply_ids`` (or reply text) after ``prompt``, under ``model``.

    The whole prompt + reply must fit in the model's context window. Gradients
    flow if the model requires them (RLHF needs them; wrap in ``torch.no_grad()`` otherwise).
    """
    block = model.config.block_size
    x, y = sft_example(tokenizer, prompt, reply_ids, block, memory)  # (T,), (T,)
    keep = y != IGNORE  # (T,): the reply's positions
    return token_logprobs(model(x[None]), y[None])[0][keep]  # (1, T, V), (1, T) -> (T,) -> (L,)


# ---------------------------------------------------------------------------
# talking to the model
# ---------------------------------------------------------------------------
def generate_reply(model, tokenizer, conversation, memory: str | None = None, max_new_tokens: int = 48,
                   temperature: float = 0.0, top_k: int | None = None,
                   generator: torch.Generator | None = None) -> tuple[str, bool]:
    """The assistant's next reply: ``(text, finished)``.

    Samples after ``prompt_ids`` until the model writes ``<|end|>``
    (``finished=True``) or ``max_new_tokens`` run out (``finished=False``).
    ``temperature=0`` is greedy, hence deterministic.

    The context window is the model's only memory of the chat: if the prompt is
    longer than ``block_size``, only its last ``block_size`` tokens are fed, so the
    start of a long chat (and any memory block) silently falls out (notebook 05).
    """
    ids = prompt_ids(tokenizer, conversation, memory)  # may be longer than block_size: sample crops it
    out = sample(model, [ids], max_new_tokens, temperature, top_k, tokenizer.end_id, generator)
    return reply_text(tokenizer, out.written(0)[0])


def reply_text(tokenizer, new_ids: list[int]) -> tuple[str, bool]:
    """``(text, finished)`` of the tokens a model wrote after the prompt: the text up
    to ``<|end|>``, and whether it wrote one (else it ran into the length limit)."""
    if tokenizer.end_id in new_ids:
        return tokenizer.decode(new_ids[:new_ids.index(tokenizer.end_id)]), True
    return tokenizer.decode(new_ids), False


@dataclass
class Reply:
    """One sampled reply.

    ``ids``: the tokens the model wrote, with the closing ``<|end|>`` if it
    finished (the end is an action too: choosing to stop). ``token_logprobs`` (L,)
    and their sum ``logprob_sum`` are log p(token) under the model at
    temperature 1 (see ``sample_replies``).
    """
    prompt: object  # the prompt as given: user text or a conversation
    text: str  # the reply without the closing <|end|>
    ids: list
    finished: bool
    logprob_sum: float
    token_logprobs: torch.Tensor


@torch.no_grad()
def sample_replies(model, tokenizer, prompts: list, n: int, max_new_tokens: int = 48,
                   temperature: float = 1.0, top_k: int | None = None,
                   generator: torch.Generator | None = None, memory: str | None = None) -> list[Reply]:
    """``n`` sampled replies per prompt, prompt-major: ``[p0 r0, p0 r1, ..., p1 r0, ...]``.

    All prompts times ``n`` replies form one batch (``utils.sampling.sample``):
    prompts of different lengths are left-padded, the pads masked out of
    attention, and each prompt is read once into a KV cache shared by its ``n``
    replies. Each row stops at ``<|end|>``.

    Log-probs are of the *model's own distribution*: ``log_softmax`` of the raw
    logits, whatever ``temperature`` / ``top_k`` were used to pick tokens. That is
    the policy that PPO's ratio, the KL penalty and DPO compare, and what
    ``reply_logprobs`` recomputes for the same ids.
    """
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"n and max_new_tokens must be >= 1, got n={n}, max_new_tokens={max_new_tokens}.")
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of prompts; wrap a single one: [prompt].")
    if not prompts:
        return []
    ids = [prompt_ids(tokenizer, p, memory) for p in prompts]
    for p in ids:
        _check_fits(len(p), max_new_tokens, model.config.block_size)
    out = sample(model, ids, max_new_tokens, temperature, top_k, tokenizer.end_id, generator, n=n)
    return [_make_reply(tokenizer, prompts[row // n], *out.written(row)) for row in range(len(ids) * n)]


def _make_reply(tokenizer, prompt, ids: list[int], logps: torch.Tensor) -> Reply:
    text, finished = reply_text(tokenizer, ids)
    return Reply(prompt, text, ids, finished, float(logps.sum()), logps)


def _check_fits(prompt_len: int, max_new_tokens: int, block_size: int) -> None:
    """Sampled log-probs must be recomputable in one pass, so prompt + reply must fit the window."""
    if prompt_len + max_new_tokens - 1 > block_size:
        raise ValueError(f"the prompt is {prompt_len} tokens and up to {max_new_tokens} new tokens are "
                         f"asked for: {prompt_len + max_new_tokens - 1} positions, but block_size is "
                         f"{block_size}. Lower max_new_tokens or shorten the prompt.")

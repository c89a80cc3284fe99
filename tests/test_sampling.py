"""utils.sampling: one sampling step, the KV cache, and the one batched sampler (``sample``)
with temperature, top-k, stop tokens, log-probs and the recompute fallback for long inputs."""
import pytest
import torch
from conftest import make_gpt, random_tokens

from utils.logprobs import token_logprobs
from utils.sampling import generate, left_padded, sample, sample_next


def test_sample_next_greedy_top_k_and_temperature():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert sample_next(logits, temperature=0).tolist() == [1]
    gen = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, top_k=2, generator=gen)) for _ in range(200)}
    assert draws == {1, 3}  # only the two best can come
    cold = [int(sample_next(logits, 0.05, generator=gen)) for _ in range(50)]
    assert cold == [1] * 50  # a low temperature is nearly greedy


def test_generate_shapes_stop_and_determinism(tiny_gpt):
    model = tiny_gpt
    start = torch.zeros(2, 1, dtype=torch.long)
    a = generate(model, start, 10, generator=torch.Generator().manual_seed(0))
    b = generate(model, start, 10, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 11) and torch.equal(a, b)
    greedy = generate(model, start, 5, temperature=0)
    assert torch.equal(greedy, generate(model, start, 5, temperature=0))
    top1 = generate(model, start, 5, top_k=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(top1, greedy)
    stop = int(greedy[0, 1])  # the first greedy token: greedy decoding stops right away
    assert generate(model, start, 8, temperature=0, stop_id=stop).shape == (2, 2)  # all stopped: end early
    prompts = torch.tensor([[0], [1]])
    free = generate(model, prompts, 8, temperature=0)
    assert (free[1, 1:] != free[0, 1]).all(), "fixture: row 1 should never produce row 0's first token"
    mixed = generate(model, prompts, 8, temperature=0, stop_id=int(free[0, 1]))
    assert mixed.shape == (2, 9)  # row 1 keeps going...
    assert (mixed[0, 1:] == free[0, 1]).all()  # ...while the stopped row 0 repeats its stop token
    assert torch.equal(mixed[1], free[1])
    long = generate(model, random_tokens(1, 20), 3)  # longer than block_size: cropped, still works
    assert long.shape == (1, 23)


def test_generate_leaves_a_training_model_in_training_mode(tiny_gpt):
    tiny_gpt.train()
    generate(tiny_gpt, torch.zeros(1, 1, dtype=torch.long), 2)
    assert tiny_gpt.training


def test_generate_explains_bad_arguments():
    model = make_gpt()
    start = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate(model, start, 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k must be None"):
        generate(model, start, 3, top_k=0)
    with pytest.raises(ValueError, match="stop_id 99 is not a token id"):
        generate(model, start, 3, stop_id=99)
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        generate(model, torch.tensor([1, 2]), 3)


# ---------------------------------------------------------------- the KV cache
SEQS = [random_tokens(1, n, seed=n)[0].tolist() for n in (3, 9, 14)]  # three lengths, one batch


def reference_greedy(model, prompt, max_new_tokens, stop_id=None):
    """Greedy decoding by definition: the whole (cropped) sequence through the model, every step."""
    seq = list(prompt)
    for _ in range(max_new_tokens):
        seq.append(int(model(torch.tensor([seq[-model.config.block_size:]]))[0, -1].argmax()))
        if seq[-1] == stop_id:
            break
    return seq[len(prompt):]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("prefill", [1, 5, 14])
def test_cache_gives_the_logits_of_a_full_forward_pass(tiny_gpt, fused, prefill):
    """Left-padded rows of different lengths, read in a chunk then token by token: at every real
    position the logits are those of the row alone, without cache."""
    for block in tiny_gpt.blocks:
        block.attn.use_fused = fused
    idx, n_pad = left_padded(SEQS, pad_id=5)  # (3, 14), (3,)
    cache = tiny_gpt.new_cache(n_pad, idx.size(1))
    chunks = [idx[:, :prefill]] + [idx[:, t:t + 1] for t in range(prefill, idx.size(1))]
    logits = torch.cat([tiny_gpt(chunk, cache=cache) for chunk in chunks], dim=1)  # (3, 14, V)
    assert cache.length == idx.size(1) and torch.isfinite(logits).all()  # pad queries too: no NaN
    for b, seq in enumerate(SEQS):
        alone = tiny_gpt(torch.tensor([seq]))[0]  # (T_b, V)
        torch.testing.assert_close(logits[b, int(n_pad[b]):], alone, atol=1e-5, rtol=1e-5)


def test_cache_select_repeats_and_drops_rows(tiny_gpt):
    idx, n_pad = left_padded(SEQS)
    cache = tiny_gpt.new_cache(n_pad, idx.size(1) + 1)
    tiny_gpt(idx, cache=cache)
    rows = torch.tensor([2, 2, 0])
    picked = cache.select(rows)
    nxt = torch.tensor([[7], [7], [7]])
    torch.testing.assert_close(tiny_gpt(nxt, cache=picked), tiny_gpt(nxt, cache=cache)[rows])
    assert picked.batch_size == 3 and picked.length == cache.length == idx.size(1) + 1


def test_cache_errors_are_clear(tiny_gpt):
    cache = tiny_gpt.new_cache([0, 0], max_len=4)
    tiny_gpt(random_tokens(2, 4), cache=cache)
    with pytest.raises(ValueError, match="the KV cache is full: it holds 4 slots, 4 are filled"):
        tiny_gpt(random_tokens(2, 1), cache=cache)
    with pytest.raises(ValueError, match="cache has 2 layers and 2 rows.*idx has 3 rows"):
        tiny_gpt(random_tokens(3, 1), cache=tiny_gpt.new_cache([0, 0], 4))
    with pytest.raises(ValueError, match="position 16 >= block_size 16.*cannot slide"):
        tiny_gpt(random_tokens(1, 1), cache=_filled(tiny_gpt, 16))  # the window is full
    with pytest.raises(ValueError, match="n_pad must list"):
        tiny_gpt.new_cache([0, 4], max_len=4)


def _filled(model, n):
    """A one-row cache with ``n`` tokens in it and room for one more."""
    cache = model.new_cache([0], n + 1)
    model(random_tokens(1, n), cache=cache)
    return cache


# ---------------------------------------------------------------- the sampler
def test_left_padded_puts_every_last_token_in_the_last_column():
    idx, n_pad = left_padded([[1, 2, 3], [4]], pad_id=9)
    assert idx.tolist() == [[1, 2, 3], [9, 9, 4]] and n_pad.tolist() == [0, 2]


def test_batched_greedy_equals_one_at_a_time_and_the_definition(tiny_gpt):
    out = sample(tiny_gpt, SEQS[:2] + [SEQS[0][:1]], 3, temperature=0)  # 3 + 3 - 1 <= 16: all cached
    for row, prompt in enumerate(SEQS[:2] + [SEQS[0][:1]]):
        alone = sample(tiny_gpt, [prompt], 3, temperature=0)
        assert out.written(row)[0] == alone.written(0)[0] == reference_greedy(tiny_gpt, prompt, 3)


def test_rows_stop_and_never_change_after_stop_id(tiny_gpt):
    prompts = [[0], [1], SEQS[1]]
    free = sample(tiny_gpt, prompts, 6, temperature=0)
    stop = free.tokens[1, 4].item()  # row 1's fifth token
    others = free.tokens[[0, 2]].flatten().tolist()
    assert stop not in free.tokens[1, :4].tolist() + others, "fixture: row 1 alone writes it, at step 4"
    out = sample(tiny_gpt, prompts, 6, temperature=0, stop_id=stop)
    assert out.tokens.shape == (3, 6) and out.alive[1].tolist() == [True] * 5 + [False]
    assert out.tokens[1, :5].tolist() == free.tokens[1, :5].tolist() and out.tokens[1, 5] == stop
    assert out.logprobs[1, 5] == 0
    assert torch.equal(out.tokens[[0, 2]], free.tokens[[0, 2]]) and out.alive[[0, 2]].all()  # the others go on
    every = sample(tiny_gpt, [prompts[1]] * 2, 8, temperature=0, stop_id=stop)
    assert every.tokens.shape == (2, 5)  # all rows stopped: generation ends early


def test_prompts_too_long_for_the_window_fall_back_to_recompute_and_crop(tiny_gpt):
    long, short = random_tokens(1, 20, seed=3)[0].tolist(), SEQS[0]
    edge = random_tokens(1, 14, seed=4)[0].tolist()  # 14 + 4 - 1 = 17 > 16: crops on the last step
    out = sample(tiny_gpt, [short, long, edge], 4, temperature=0)
    assert out.written(1)[0] == reference_greedy(tiny_gpt, long, 4)
    assert out.written(2)[0] == reference_greedy(tiny_gpt, edge, 4)
    assert out.written(0)[0] == sample(tiny_gpt, [short], 4, temperature=0).written(0)[0]
    assert generate(tiny_gpt, torch.tensor([long]), 4, temperature=0)[0, 20:].tolist() == out.written(1)[0]
    stop = out.written(0)[0][0]  # the short row stops at once; the long one keeps writing
    assert stop not in out.written(1)[0], "fixture: the long row should not write the short row's first token"
    mixed = sample(tiny_gpt, [short, long], 4, temperature=0, stop_id=stop)
    assert mixed.tokens[0].tolist() == [stop] * 4 and mixed.alive[0].tolist() == [True, False, False, False]
    assert mixed.written(1)[0] == out.written(1)[0]


def test_sampled_logprobs_are_recomputable_in_one_pass(tiny_gpt):
    prompts = [SEQS[0], SEQS[1], [3]]
    gen = torch.Generator().manual_seed(0)
    out = sample(tiny_gpt, prompts, 6, temperature=0.7, top_k=10, stop_id=51, generator=gen, n=4)
    assert out.tokens.shape[0] == 12
    stopped = 0
    for row in range(12):
        prompt = prompts[row // 4]  # prompt-major
        ids, logps = out.written(row)
        stopped += len(ids) < 6
        seq = torch.tensor([prompt + ids])
        full = token_logprobs(tiny_gpt(seq[:, :-1]), seq[:, 1:])[0, len(prompt) - 1:]  # (L,)
        torch.testing.assert_close(logps, full, atol=1e-5, rtol=0)
    assert stopped, "fixture: some row should stop early"


def test_n_samples_per_prompt_are_prompt_major_and_seeded(tiny_gpt):
    greedy = sample(tiny_gpt, [SEQS[0], SEQS[1]], 4, temperature=0, n=3)
    assert [greedy.written(r)[0] for r in range(6)] == \
        [greedy.written(0)[0]] * 3 + [greedy.written(3)[0]] * 3
    a = sample(tiny_gpt, [SEQS[0]], 5, n=4, generator=torch.Generator().manual_seed(1))
    b = sample(tiny_gpt, [SEQS[0]], 5, n=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.tokens, b.tokens) and len({tuple(r) for r in a.tokens.tolist()}) > 1


def test_sample_restores_training_mode_and_explains_bad_arguments(tiny_gpt):
    tiny_gpt.train()
    sample(tiny_gpt, [[1]], 2)
    assert tiny_gpt.training
    assert sample(tiny_gpt, [[1], [2, 3]], 0).tokens.shape == (2, 0)
    with pytest.raises(ValueError, match="non-empty list of prompts"):
        sample(tiny_gpt, [], 3)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        sample(tiny_gpt, [[1], []], 3)
    with pytest.raises(ValueError, match="n \\(samples per prompt\\) must be >= 1"):
        sample(tiny_gpt, [[1]], 3, n=0)
    with pytest.raises(ValueError, match="token id 64 >= vocab_size 64"):
        sample(tiny_gpt, [[1, 64]], 3)
    with pytest.raises(ValueError, match="top_k must be None"):
        sample(tiny_gpt, [[1]], 3, top_k=0)

"""utils.sampling: one sampling step, and generation with temperature, top-k and stop tokens."""
import pytest
import torch
from conftest import make_gpt, random_tokens

from utils.sampling import generate, sample_next


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

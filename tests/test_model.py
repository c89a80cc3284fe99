"""utils.model: shapes, causality, the untrained loss, initialisation, parameter counts, gradients."""
import math

import pytest
import torch
from conftest import TINY_CONFIG, make_gpt, random_tokens

from utils.logprobs import mean_nll
from utils.model import GPT, GPTConfig, parameter_checksum


def test_forward_gives_next_token_logits_for_every_position(tiny_gpt):
    logits = tiny_gpt(random_tokens(3, 10))
    assert logits.shape == (3, 10, TINY_CONFIG.vocab_size) and torch.isfinite(logits).all()


def test_forward_without_cache_is_the_plain_stack(tiny_gpt):
    """The training path: embeddings, the blocks, the final norm and the head, nothing else (bit for bit)."""
    idx = random_tokens(2, 16)
    x = tiny_gpt.tok_emb(idx) + tiny_gpt.pos_emb(torch.arange(16))
    for block in tiny_gpt.blocks:
        x = x + block.attn(block.ln1(x))
        x = x + block.mlp(block.ln2(x))
    assert torch.equal(tiny_gpt(idx), tiny_gpt.head(tiny_gpt.ln_f(x)))


def test_cached_forward_matches_the_full_pass(tiny_gpt):
    """Token by token through a KV cache, the same logits as one pass over the sequence."""
    idx = random_tokens(2, 16)
    cache = tiny_gpt.new_cache([0, 0], max_len=16)
    steps = torch.cat([tiny_gpt(idx[:, t:t + 1], cache=cache) for t in range(16)], dim=1)  # (2, 16, V)
    torch.testing.assert_close(steps, tiny_gpt(idx), atol=1e-5, rtol=1e-5)


def test_determinism_under_seed():
    a, b = make_gpt(seed=3), make_gpt(seed=3)
    idx = random_tokens(2, 12)
    assert torch.equal(a(idx), b(idx))
    assert parameter_checksum(a) == parameter_checksum(b)
    assert parameter_checksum(a) != parameter_checksum(make_gpt(seed=4))


def test_checksum_moves_after_one_optimizer_step(tiny_gpt):
    """The negative control for notebook 05's 'weights unchanged': one update does change the checksum."""
    before = parameter_checksum(tiny_gpt)
    opt = torch.optim.SGD(tiny_gpt.parameters(), lr=1e-3)
    idx = random_tokens(2, 8)
    mean_nll(tiny_gpt(idx[:, :-1]), idx[:, 1:]).backward()
    opt.step()
    assert abs(parameter_checksum(tiny_gpt) - before) > 1e-6


def test_untrained_loss_is_slightly_above_ln_vocab():
    """At init the logits are small but not zero: the loss sits just above ln V (random guessing),
    never below it, and the excess is the spread of the initial logits (a few hundredths)."""
    cfg = GPTConfig(vocab_size=256, block_size=32, n_layer=2, n_head=2, d_model=32)
    model = make_gpt(cfg)
    idx = random_tokens(8, 33, vocab=256, seed=1)
    loss = mean_nll(model(idx[:, :-1]), idx[:, 1:]).item()
    assert math.log(256) < loss < math.log(256) + 0.05


def test_model_is_causal(tiny_gpt):
    idx = random_tokens(2, 12)
    idx2 = idx.clone()
    t = 6
    idx2[:, t + 1:] = (idx2[:, t + 1:] + 7) % 64
    a, b = tiny_gpt(idx), tiny_gpt(idx2)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


def test_fused_and_scratch_attention_give_same_logits(tiny_gpt):
    idx = random_tokens(2, 16)
    fused = tiny_gpt(idx)
    for block in tiny_gpt.blocks:
        block.attn.use_fused = False
    torch.testing.assert_close(tiny_gpt(idx), fused, atol=1e-5, rtol=1e-4)


def test_weights_tied_and_init_scaled(tiny_gpt):
    assert tiny_gpt.head.weight is tiny_gpt.tok_emb.weight
    untied = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, d_model=16, tie_weights=False))
    assert untied.head.weight is not untied.tok_emb.weight
    torch.manual_seed(0)
    big = GPT(GPTConfig(n_layer=8))
    assert abs(big.blocks[0].mlp.proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.001
    assert abs(big.blocks[0].mlp.fc.weight.std().item() - 0.02) < 0.001


def test_parameter_table_sums_to_total():
    for cfg in (TINY_CONFIG, GPTConfig(), GPTConfig(tie_weights=False, bias=False)):
        model = GPT(cfg)
        table = model.num_parameters(by_part=True)
        assert sum(v for k, v in table.items() if k != "total") == table["total"] == model.num_parameters()
        assert table["total"] == sum(p.numel() for p in model.parameters())
    d, V, L, T = 128, 512, 4, 128
    table = GPT(GPTConfig()).num_parameters(by_part=True)
    assert table == {"embeddings": V * d + T * d, "attention": L * (4 * d * d + 4 * d),
                     "mlp": L * (8 * d * d + 5 * d), "norms": (2 * L + 1) * 2 * d, "head": 0,
                     "total": 875_264}


def test_gradcheck_float64(tiny_gpt):
    """Autograd's gradients of the loss equal finite differences (float64, tiny model)."""
    model = tiny_gpt.double()
    idx, tgt = random_tokens(1, 5), random_tokens(1, 5, seed=1)
    name = "blocks.0.attn.qkv.weight"
    rest = dict(model.named_parameters())[name].detach()[:, 2:]
    w = dict(model.named_parameters())[name].detach()[:, :2].clone().requires_grad_()  # a slice: fast

    def loss(cols):
        logits = torch.func.functional_call(model, {name: torch.cat([cols, rest], dim=1)}, (idx,))
        return mean_nll(logits, tgt)

    assert torch.autograd.gradcheck(loss, (w,), eps=1e-6, atol=1e-6, fast_mode=True)
    x = torch.randn(1, 5, 16, dtype=torch.float64, requires_grad=True)  # through a whole block
    assert torch.autograd.gradcheck(lambda x: model.blocks[1](x), (x,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_error_token_beyond_vocab(tiny_gpt):
    with pytest.raises(ValueError, match="token id 70 >= vocab_size 64: was this model built for a "
                                         "different tokenizer"):
        tiny_gpt(torch.tensor([[1, 70]]))


def test_error_negative_token_and_wrong_shape(tiny_gpt):
    with pytest.raises(ValueError, match="token id -1 is negative"):
        tiny_gpt(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match=r"shape \(B, T\).*torch.tensor\(\[ids\]\)"):
        tiny_gpt(torch.tensor([1, 2, 3]))


def test_error_sequence_longer_than_block_size(tiny_gpt):
    with pytest.raises(ValueError, match="sequence length 17 > block_size 16"):
        tiny_gpt(random_tokens(1, 17))


def test_error_bad_config():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(d_model=10, n_head=3)
    with pytest.raises(ValueError, match="n_layer must be a positive integer"):
        GPTConfig(n_layer=0)

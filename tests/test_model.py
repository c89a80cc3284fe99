"""utils.model: shapes, causality, the untrained loss, gradients, and safe save/load."""
import math

import pytest
import torch
import torch.nn.functional as F

from utils.model import (
    GPT,
    CheckpointMismatchError,
    GPTConfig,
    MissingCheckpointError,
    load_model,
    parameter_checksum,
    read_checkpoint_metadata,
    save_model,
)

TINY = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, d_model=16)


def tiny_model(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    return GPT(cfg).eval()


def tokens(B, T, vocab=TINY.vocab_size, seed=0):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_loss():
    model = tiny_model()
    idx = tokens(3, 10)
    logits, loss = model(idx)
    assert logits.shape == (3, 10, 64) and loss is None
    _, loss = model(idx, tokens(3, 10, seed=1))
    assert loss.shape == () and torch.isfinite(loss)


def test_loss_is_cross_entropy_and_ignore_index_and_mask_work():
    model = tiny_model()
    idx, tgt = tokens(2, 8), tokens(2, 8, seed=1)
    logits, loss = model(idx, tgt)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 64), tgt.reshape(-1)))
    keep = torch.zeros(2, 8, dtype=torch.bool)
    keep[:, 4:] = True
    _, masked = model(idx, tgt, loss_mask=keep)
    torch.testing.assert_close(masked, F.cross_entropy(logits[:, 4:].reshape(-1, 64), tgt[:, 4:].reshape(-1)))
    _, ignored = model(idx, tgt.masked_fill(~keep, -1), ignore_index=-1)
    torch.testing.assert_close(ignored, masked)


def test_determinism_under_seed():
    a, b = tiny_model(seed=3), tiny_model(seed=3)
    idx = tokens(2, 12)
    assert torch.equal(a(idx)[0], b(idx)[0])
    assert parameter_checksum(a) == parameter_checksum(b)
    assert parameter_checksum(a) != parameter_checksum(tiny_model(seed=4))


def test_untrained_loss_is_about_ln_vocab():
    cfg = GPTConfig(vocab_size=256, block_size=32, n_layer=2, n_head=2, d_model=32)
    model = tiny_model(cfg=cfg)
    _, loss = model(tokens(8, 32, vocab=256), tokens(8, 32, vocab=256, seed=1))
    assert abs(loss.item() - math.log(256)) < 0.1


def test_model_is_causal():
    model = tiny_model()
    idx = tokens(2, 12)
    idx2 = idx.clone()
    t = 6
    idx2[:, t + 1:] = (idx2[:, t + 1:] + 7) % 64
    a, b = model(idx)[0], model(idx2)[0]
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


def test_fused_and_scratch_attention_give_same_logits():
    model = tiny_model()
    idx = tokens(2, 16)
    fused = model(idx)[0]
    for block in model.blocks:
        block.attn.use_fused = False
    torch.testing.assert_close(model(idx)[0], fused, atol=1e-5, rtol=1e-4)


def test_weights_tied_and_init_scaled():
    model = tiny_model()
    assert model.head.weight is model.tok_emb.weight
    untied = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, d_model=16, tie_weights=False))
    assert untied.head.weight is not untied.tok_emb.weight
    torch.manual_seed(0)
    big = GPT(GPTConfig(n_layer=8))
    assert abs(big.blocks[0].mlp.proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.001
    assert abs(big.blocks[0].mlp.fc.weight.std().item() - 0.02) < 0.001


def test_parameter_table_sums_to_total():
    for cfg in (TINY, GPTConfig(), GPTConfig(tie_weights=False, bias=False)):
        model = GPT(cfg)
        table = model.num_parameters(by_part=True)
        assert sum(v for k, v in table.items() if k != "total") == table["total"] == model.num_parameters()
        assert table["total"] == sum(p.numel() for p in model.parameters())
    d, V, L, T = 128, 512, 4, 128
    table = GPT(GPTConfig()).num_parameters(by_part=True)
    assert table == {"embeddings": V * d + T * d, "attention": L * (4 * d * d + 4 * d),
                     "mlp": L * (8 * d * d + 5 * d), "norms": (2 * L + 1) * 2 * d, "head": 0,
                     "total": 875_264}


def test_gradcheck_float64():
    """Autograd's gradients of the loss equal finite differences (float64, tiny model)."""
    model = tiny_model().double()
    idx, tgt = tokens(1, 5), tokens(1, 5, seed=1)
    name = "blocks.0.attn.qkv.weight"
    w = dict(model.named_parameters())[name].detach()[:, :2].clone().requires_grad_()  # a slice: fast
    rest = dict(model.named_parameters())[name].detach()[:, 2:]

    def loss(cols):
        params = {name: torch.cat([cols, rest], dim=1)}
        return torch.func.functional_call(model, params, (idx, tgt))[1]

    assert torch.autograd.gradcheck(loss, (w,), eps=1e-6, atol=1e-6, fast_mode=True)
    x = torch.randn(1, 5, 16, dtype=torch.float64, requires_grad=True)  # through a whole block
    assert torch.autograd.gradcheck(lambda x: model.blocks[1](x), (x,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_generate_shapes_stop_and_determinism():
    model = tiny_model()
    start = torch.zeros(2, 1, dtype=torch.long)
    a = model.generate(start, 10, generator=torch.Generator().manual_seed(0))
    b = model.generate(start, 10, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 11) and torch.equal(a, b)
    greedy = model.generate(start, 5, temperature=0)
    assert torch.equal(greedy, model.generate(start, 5, temperature=0))
    top1 = model.generate(start, 5, top_k=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(top1, greedy)
    stop = int(greedy[0, 1])  # the first greedy token: greedy decoding stops right away
    assert model.generate(start, 8, temperature=0, stop_id=stop).shape == (2, 2)  # all stopped: end early
    prompts = torch.tensor([[0], [1]])
    free = model.generate(prompts, 8, temperature=0)
    assert (free[1, 1:] != free[0, 1]).all(), "fixture: row 1 should never produce row 0's first token"
    mixed = model.generate(prompts, 8, temperature=0, stop_id=int(free[0, 1]))
    assert mixed.shape == (2, 9)  # row 1 keeps going...
    assert (mixed[0, 1:] == free[0, 1]).all()  # ...while the stopped row 0 repeats its stop token
    assert torch.equal(mixed[1], free[1])
    long = model.generate(tokens(1, 20), 3)  # longer than block_size: cropped, still works
    assert long.shape == (1, 23)


def test_error_token_beyond_vocab():
    with pytest.raises(ValueError, match="token id 70 >= vocab_size 64: was this model built for a "
                                         "different tokenizer"):
        tiny_model()(torch.tensor([[1, 70]]))


def test_error_sequence_longer_than_block_size():
    with pytest.raises(ValueError, match="sequence length 17 > block_size 16"):
        tiny_model()(tokens(1, 17))


def test_error_bad_config():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(d_model=10, n_head=3)


def test_save_load_round_trip(tmp_path):
    model = tiny_model(seed=5)
    path = save_model(model, tmp_path / "tiny.safetensors", extra_metadata={"steps": 3}, tokenizer="abc123")
    loaded = load_model(path, expected_config=TINY, expected_tokenizer="abc123")
    idx = tokens(2, 16)
    assert torch.equal(model(idx)[0], loaded(idx)[0])
    assert loaded.head.weight is loaded.tok_emb.weight
    assert parameter_checksum(loaded) == parameter_checksum(model)
    meta = read_checkpoint_metadata(path)
    assert meta["config"] == TINY and meta["extra"] == {"steps": 3} and meta["tokenizer_fingerprint"] == "abc123"
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, then a JSON header (no pickle)


def test_save_load_untied(tmp_path):
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, d_model=16, tie_weights=False)
    model = tiny_model(cfg=cfg)
    loaded = load_model(save_model(model, tmp_path / "u.safetensors"))
    idx = tokens(1, 8)
    assert torch.equal(model(idx)[0], loaded(idx)[0])


def test_load_with_wrong_config_names_the_field(tmp_path):
    path = save_model(tiny_model(), tmp_path / "tiny.safetensors")
    with pytest.raises(CheckpointMismatchError, match="n_layer: checkpoint has 2, expected 3"):
        load_model(path, expected_config=GPTConfig(vocab_size=64, block_size=16, n_layer=3, n_head=2,
                                                   d_model=16))
    with pytest.raises(CheckpointMismatchError, match="d_model: checkpoint has 16, expected 32"):
        load_model(path, expected_config={"d_model": 32})


def test_load_with_wrong_tokenizer(tmp_path):
    path = save_model(tiny_model(), tmp_path / "tiny.safetensors", tokenizer="aaa")
    with pytest.raises(CheckpointMismatchError, match="tokenizer fingerprint 'aaa'.*'bbb'"):
        load_model(path, expected_tokenizer="bbb")


def test_load_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(MissingCheckpointError, match="Rebuild it with `make checkpoints`"):
        load_model(tmp_path / "nope.safetensors")

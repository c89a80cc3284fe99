"""utils.attention: the from-scratch attention matches torch's fused kernel, and never sees the future."""
import math

import pytest
import torch
import torch.nn.functional as F

from utils.attention import (
    KVCache,
    MultiHeadAttention,
    attention_scores,
    attention_weights,
    causal_mask,
    scaled_dot_product_attention,
    softmax_stable,
)


def qkv(*shape, seed=0, scale=1.0, dtype=torch.float32):
    """Seeded random queries, keys and values of one shape."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=g, dtype=dtype) for _ in range(3))
    return q * scale, k, v


SHAPES = [(2, 4, 16, 32), (3, 2, 7, 5), (7, 5), (1, 1, 1, 3)]  # batched, odd sizes, unbatched, T=1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_sdpa(shape, causal):
    q, k, v = qkv(*shape)
    mine = scaled_dot_product_attention(q, k, v, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-4)


def test_matches_torch_sdpa_with_bool_mask():
    q, k, v = qkv(2, 3, 7, 5, seed=1)
    mask = torch.rand(7, 7, generator=torch.Generator().manual_seed(2)) > 0.4
    mask |= torch.eye(7, dtype=torch.bool)  # every query may see at least itself
    mine = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-4)


def test_fully_masked_row_gives_zeros_like_torch():
    q, k, v = qkv(1, 1, 3, 4, seed=3)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    mine = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(mine, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert not mine.isnan().any()


def test_large_logits_do_not_overflow():
    q, k, v = qkv(2, 2, 9, 8, seed=4, scale=1e4)  # scores ~ 1e4: exp() of them is inf
    naive = torch.exp(attention_scores(q, k))
    assert torch.isinf(naive).any(), "the test needs logits that overflow a naive exp"
    for causal in (False, True):
        mine = scaled_dot_product_attention(q, k, v, causal=causal)
        assert torch.isfinite(mine).all()
        torch.testing.assert_close(mine, F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                   atol=1e-5, rtol=1e-4)


def test_softmax_stable_matches_torch_and_rows_sum_to_one():
    x = torch.randn(4, 11, generator=torch.Generator().manual_seed(5)) * 300
    torch.testing.assert_close(softmax_stable(x), torch.softmax(x, dim=-1))
    torch.testing.assert_close(softmax_stable(x).sum(-1), torch.ones(4))


def test_scores_are_scaled_by_sqrt_d():
    q, k, _ = qkv(5, 16, seed=6)
    torch.testing.assert_close(attention_scores(q, k), q @ k.T / 4.0)


def test_causal_mask_is_lower_triangular_bool():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]


def test_weights_are_distributions_with_no_future():
    q, k, _ = qkv(2, 3, 6, 4, seed=7)
    w = attention_weights(q, k, causal=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
    assert (w.triu(diagonal=1) == 0).all()


def test_attention_is_causal():
    """Changing positions t+1.. leaves outputs 0..t unchanged."""
    q, k, v = qkv(1, 2, 10, 4, seed=8)
    t = 5
    k2, v2, q2 = k.clone(), v.clone(), q.clone()
    for x in (q2, k2, v2):
        x[..., t + 1:, :] = torch.randn_like(x[..., t + 1:, :]) * 10
    out1 = scaled_dot_product_attention(q, k, v, causal=True)
    out2 = scaled_dot_product_attention(q2, k2, v2, causal=True)
    torch.testing.assert_close(out1[..., : t + 1, :], out2[..., : t + 1, :])
    assert not torch.allclose(out1[..., t + 1:, :], out2[..., t + 1:, :])


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_fused_and_scratch_agree(causal):
    torch.manual_seed(0)
    mha = MultiHeadAttention(d_model=24, n_head=3, causal=causal)
    x = torch.randn(2, 7, 24)
    fused = mha(x)
    mha.use_fused = False
    scratch = mha(x)
    torch.testing.assert_close(fused, scratch, atol=1e-6, rtol=1e-5)
    y, w = mha(x, return_weights=True)
    assert y.shape == (2, 7, 24) and w.shape == (2, 3, 7, 7)
    torch.testing.assert_close(y, fused, atol=1e-6, rtol=1e-5)


def test_multihead_matches_a_loop_over_heads():
    torch.manual_seed(1)
    mha = MultiHeadAttention(d_model=8, n_head=2, causal=True, bias=False)
    x = torch.randn(1, 5, 8)
    q, k, v = mha.qkv(x).split(8, dim=-1)  # (1, 5, 8) each
    heads = [scaled_dot_product_attention(q[..., h * 4:(h + 1) * 4], k[..., h * 4:(h + 1) * 4],
                                          v[..., h * 4:(h + 1) * 4], causal=True) for h in range(2)]
    expected = mha.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(mha(x), expected, atol=1e-6, rtol=1e-5)


def test_multihead_is_causal():
    torch.manual_seed(2)
    mha = MultiHeadAttention(d_model=16, n_head=4, causal=True).eval()
    x = torch.randn(1, 9, 16)
    x2 = x.clone()
    x2[:, 4:] += 5.0
    torch.testing.assert_close(mha(x)[:, :4], mha(x2)[:, :4])


@pytest.mark.parametrize("use_fused", [True, False])
def test_multihead_with_a_kv_cache_matches_each_row_alone(use_fused):
    """Two rows, the first left-padded by 3: read in a chunk of 4, then one token at a time,
    each real position gives what the row gives alone; pads get no weight."""
    torch.manual_seed(3)
    mha = MultiHeadAttention(d_model=16, n_head=2, use_fused=use_fused).eval()
    x = torch.randn(2, 7, 16)
    cache = KVCache(n_layer=1, max_len=7, n_pad=[3, 0])
    outs = [mha(x[:, :4], cache=cache)]
    cache.advance(4)
    for t in range(4, 7):
        outs.append(mha(x[:, t:t + 1], cache=cache))
        cache.advance(1)
    out = torch.cat(outs, dim=1)  # (2, 7, 16)
    torch.testing.assert_close(out[0, 3:], mha(x[:1, 3:])[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out[1], mha(x[1:])[0], atol=1e-6, rtol=1e-5)
    assert cache.keys[0].shape == (2, 2, 7, 8) and cache.length == 7
    _, w = mha(x[:, :1], return_weights=True, cache=KVCache(1, 1, [0, 0]))
    assert w.shape == (2, 2, 1, 1)


def test_cache_mask_hides_pads_and_the_future():
    cache = KVCache(n_layer=1, max_len=5, n_pad=[2, 0])
    m = cache.mask(3)[:, 0]  # (2, 3, 3)
    assert m[0].tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    assert m[1].tolist() == causal_mask(3).tolist()
    assert cache.positions(3).tolist() == [[0, 0, 0], [0, 1, 2]]


def test_cache_refuses_non_causal_attention():
    with pytest.raises(ValueError, match="exact only for causal attention"):
        MultiHeadAttention(8, 2, causal=False)(torch.zeros(1, 2, 8), cache=KVCache(1, 2, [0]))


def test_gradients_match_finite_differences_float64():
    q, k, v = qkv(1, 2, 4, 3, seed=9, dtype=torch.float64)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c, causal=True),
                                    (q, k, v), fast_mode=True)


def test_error_mask_wrong_dtype():
    q, k, v = qkv(1, 1, 4, 2)
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(True = may attend"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 4))


def test_error_mask_wrong_shape():
    q, k, v = qkv(1, 1, 4, 2)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\).*\(Tq, Tk\) = \(4, 4\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 3, dtype=torch.bool))


def test_error_qk_last_dims_differ():
    with pytest.raises(ValueError, match="same last dimension"):
        attention_scores(torch.zeros(3, 4), torch.zeros(3, 5))


def test_error_kv_lengths_differ():
    with pytest.raises(ValueError, match="one row per key"):
        scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(2, 4))


def test_error_d_model_not_divisible():
    with pytest.raises(ValueError, match="d_model=10 is not divisible by n_head=3"):
        MultiHeadAttention(10, 3)


def test_error_wrong_input_width():
    with pytest.raises(ValueError, match=r"\(B, T, d_model=8\)"):
        MultiHeadAttention(8, 2)(torch.zeros(1, 3, 6))


def test_unscaled_scores_grow_like_sqrt_d():
    """Why the 1/sqrt(d): raw dot products of random vectors have std ~ sqrt(d)."""
    g = torch.Generator().manual_seed(10)
    q, k = torch.randn(2000, 256, generator=g), torch.randn(2000, 256, generator=g)
    raw_std = (q * k).sum(-1).std().item()
    assert abs(raw_std / math.sqrt(256) - 1) < 0.1

"""Self-attention from scratch, after Vaswani et al. 2017, "Attention Is All You Need" (arXiv 1706.03762).

Each position ``t`` asks a question (its *query*), every position ``s`` offers a
label (its *key*) and a message (its *value*). The output at ``t`` is an average of
the values, weighted by how well each key matches the query:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V          (Vaswani et al. 2017, eq. 1)

Notebook 02 derives every step; this module is the one home of the final code,
and later notebooks import it. Two paths compute the same thing:

* the **from-scratch** path (``scaled_dot_product_attention`` below): readable,
  returns the attention weights for heat maps, and costs O(T^2) memory;
* the **fused** path (``torch.nn.functional.scaled_dot_product_attention``): one
  optimized kernel, faster, the default for training.

For writing text one token at a time, ``KVCache`` keeps every earlier token's
keys and values, so each new token costs one position instead of the whole prefix.

Shapes: ``B`` batch, ``nh`` heads, ``T`` sequence length (``Tq`` queries, ``Tk``
keys), ``hs`` head size, ``d_model = nh * hs``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["attention_scores", "causal_mask", "softmax_stable", "attention_weights",
           "scaled_dot_product_attention", "MultiHeadAttention", "KVCache"]


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """How well each query matches each key: ``q k^T / sqrt(d)`` (Vaswani et al. 2017, sec. 3.2.1).

    The dot product of two random vectors with ``d`` unit-variance entries has
    variance ``d``; dividing by ``sqrt(d)`` brings it back to about 1, so the
    softmax that follows does not saturate as the head size grows.
    """
    _check_qk(q, k)
    return (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (..., Tq, hs) @ (..., hs, Tk) -> (..., Tq, Tk)


def causal_mask(T: int, T_keys: int | None = None, device=None) -> torch.Tensor:
    """Bool mask, ``True`` = may attend: query ``t`` sees keys ``0..t``, never the future.

    Lower-triangular (Vaswani et al. 2017, sec. 3.2.3: "masking out ... all values
    which correspond to illegal connections"). With ``T_keys != T`` the triangle is
    aligned top-left, as in ``F.scaled_dot_product_attention(is_causal=True)``.
    """
    T_keys = T if T_keys is None else T_keys
    return torch.ones(T, T_keys, dtype=torch.bool, device=device).tril()  # (T, T_keys)


def softmax_stable(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax that cannot overflow: subtract each row's maximum before ``exp``.

    ``softmax(x) = softmax(x - c)`` for any constant ``c`` (it cancels in the
    ratio). With ``c = max(x)`` the largest exponent is ``exp(0) = 1``, so even
    logits of 1e4 give finite numbers, where a naive ``exp(1e4)`` is ``inf`` and
    ``inf / inf`` is ``nan``. A row that is entirely ``-inf`` (a query allowed to
    see nothing) gives all zeros, as torch's fused kernel does.
    """
    row_max = x.amax(dim=dim, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(x - row_max)  # every entry <= 1
    total = e.sum(dim=dim, keepdim=True)  # >= 1 unless the whole row is masked
    return e / total.clamp_min(torch.finfo(e.dtype).tiny)


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """The attention pattern: ``softmax(q k^T / sqrt(d))`` with disallowed pairs masked out.

    Row ``t`` of the result is a probability distribution over the keys: how much
    position ``t`` draws from each position. ``mask`` is bool, ``True`` = may
    attend, broadcastable to ``(..., Tq, Tk)``; ``causal=True`` also hides the future.
    """
    scores = attention_scores(q, k)  # (..., Tq, Tk)
    allowed = _allowed(mask, causal, scores)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))  # exp(-inf) = 0: no weight
    return softmax_stable(scores, dim=-1)  # (..., Tq, Tk), each row sums to 1


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, causal: bool = False,
                                 return_weights: bool = False):
    """Scaled dot-product attention from scratch (Vaswani et al. 2017, eq. 1).

    Matches ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
    is_causal=causal)`` for q ``(..., Tq, hs)``, k ``(..., Tk, hs)``, v ``(..., Tk, hv)``,
    e.g. fully batched ``(B, nh, T, hs)``. Returns ``(..., Tq, hv)``, and the weights
    ``(..., Tq, Tk)`` too when ``return_weights=True``. (Unlike torch, ``mask`` and
    ``causal`` may be combined: a pair must pass both.)
    """
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v must have one row per key: k has {k.size(-2)} keys "
                         f"(shape {tuple(k.shape)}) but v has {v.size(-2)} (shape {tuple(v.shape)}).")
    weights = attention_weights(q, k, mask=mask, causal=causal)  # (..., Tq, Tk)
    out = weights @ v  # (..., Tq, Tk) @ (..., Tk, hv) -> (..., Tq, hv): a weighted average of values
    return (out, weights) if return_weights else out


class MultiHeadAttention(nn.Module):
    """Several attention heads side by side (Vaswani et al. 2017, sec. 3.2.2).

    One fused linear layer ``qkv`` makes queries, keys and values for all heads at
    once; each head works in its own ``hs = d_model // n_head`` dimensions; the
    heads' outputs are concatenated and mixed by ``proj``. No Python loop over
    heads: the head dimension is a batch dimension, ``(B, nh, T, hs)``.

    ``use_fused=True`` (the default, for training) calls torch's fused kernel;
    ``use_fused=False`` runs the from-scratch path above (for teaching). Both give
    the same numbers up to float rounding. ``forward(x, return_weights=True)``
    always uses the from-scratch path and also returns the weights ``(B, nh, T, T)``.

    ``forward(x, cache=kv, layer=i)`` is the generation path: ``x`` holds only the
    new tokens, their keys and values are appended to layer ``i`` of the
    ``KVCache``, and the queries attend to every cached token (see ``KVCache``).
    Without a cache, attention runs over ``x`` alone, as in training.
    """

    def __init__(self, d_model: int, n_head: int, causal: bool = True, bias: bool = True,
                 dropout: float = 0.0, use_fused: bool = True):
        super().__init__()
        if n_head < 1 or d_model % n_head != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}: each head "
                             f"gets d_model // n_head dimensions, so pick n_head that divides "
                             f"d_model (e.g. {_divisors_hint(d_model)}).")
        self.d_model, self.n_head, self.head_size = d_model, n_head, d_model // n_head
        self.causal, self.dropout, self.use_fused = causal, dropout, use_fused
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # all heads' q, k, v in one matmul
        self.proj = nn.Linear(d_model, d_model, bias=bias)  # mixes the heads' outputs
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, return_weights: bool = False, cache: KVCache | None = None,
                layer: int = 0):
        """``x`` (B, T, d_model) -> (B, T, d_model) [, weights (B, nh, T, T)].

        With ``cache``: the weights are ``(B, nh, T, L + T)``, over the ``L`` cached
        tokens and the ``T`` new ones."""
        if x.dim() != 3 or x.size(-1) != self.d_model:
            raise ValueError(f"MultiHeadAttention expects x of shape (B, T, d_model={self.d_model}), "
                             f"got {tuple(x.shape)}.")
        q, k, v = self._split_heads(x)  # each (B, nh, T, hs)
        if cache is not None:
            return self._forward_cached(q, k, v, cache, layer, return_weights)
        weights = None
        if self.use_fused and not return_weights:
            y = self._fused(q, k, v)  # (B, nh, T, hs)
        else:
            y, weights = scaled_dot_product_attention(q, k, v, causal=self.causal, return_weights=True)
            if self.training and self.dropout > 0:
                y = self.attn_drop(weights) @ v  # (B, nh, T, T) @ (B, nh, T, hs)
        y = self._merge_heads(y)  # (B, T, d_model)
        y = self.proj(y)  # (B, T, d_model)
        return (y, weights) if return_weights else y

    def _forward_cached(self, q, k, v, cache: KVCache, layer: int, return_weights: bool):
        """The new tokens' queries attend to every token so far, read from the cache."""
        if not self.causal:
            raise ValueError("a KV cache is exact only for causal attention (no token sees a later one); "
                             "this MultiHeadAttention has causal=False.")
        k, v = cache.store(layer, k, v)  # each (B, nh, L + T, hs): the cached tokens, then the new ones
        mask = cache.mask(q.size(-2))  # (B, 1, T, L + T): earlier real tokens, and each token itself
        if self.use_fused and not return_weights:
            y, weights = self._fused_masked(q, k, v, mask), None  # (B, nh, T, hs)
        else:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
        y = self.proj(self._merge_heads(y))  # (B, T, d_model)
        return (y, weights) if return_weights else y

    def _fused_masked(self, q, k, v, mask) -> torch.Tensor:
        """torch's fused kernel with an explicit bool mask (generation; fp32 under CPU autocast, as ``_fused``)."""
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def _fused(self, q, k, v) -> torch.Tensor:
        """torch's fused kernel. Under CPU bf16 autocast it runs in float32: in torch
        2.13 its bf16 backward on CPU is ~3x slower than float32 (bench/train_speed.py),
        which cancelled all the speed bf16 gave the matmuls."""
        drop = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                      is_causal=self.causal, dropout_p=drop)
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=drop)

    def _split_heads(self, x: torch.Tensor):
        B, T, _ = x.shape
        qkv = self.qkv(x)  # (B, T, 3 * d_model)
        qkv = qkv.view(B, T, 3, self.n_head, self.head_size)  # (B, T, 3, nh, hs)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs): a view, no copy
        return qkv[0], qkv[1], qkv[2]  # each (B, nh, T, hs)

    def _merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        B, nh, T, hs = y.shape  # (B, nh, T, hs)
        return y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs): heads side by side

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_head={self.n_head}, head_size={self.head_size}, "
                f"causal={self.causal}, use_fused={self.use_fused}")


class KVCache:
    """A key/value cache: what generation keeps of the tokens it has already read.

    Writing text, step ``t`` needs the output at the newest position only. Its
    query meets the keys and values of *all* tokens so far, and those of tokens
    ``0..t-1`` are the very numbers computed at the previous steps: causal
    attention never lets an earlier position depend on a later one, so appending
    a token changes nothing before it, in any layer. Keeping them and computing
    keys and values for the new token only is therefore exact (up to float
    rounding: the same sums, added in another order), and a step costs one
    position instead of the whole prefix.

    One cache serves a whole model: per layer, one preallocated buffer of keys
    and one of values, each ``(B, nh, max_len, hs)``, filled left to right
    (``length`` slots so far). Prompts of different lengths share a batch by
    **left padding**: row ``b`` starts with ``n_pad[b]`` pad slots, so the newest
    token of every row sits in the same slot. Pad keys are masked out (``mask``)
    and positions count from each row's first real token (``positions``), so a
    padded row computes what it would compute alone.

    ``MultiHeadAttention.forward(x, cache=..., layer=i)`` stores and reads layer
    ``i``; the caller (``GPT.forward``) calls ``advance`` once all layers have run.
    """

    def __init__(self, n_layer: int, max_len: int, n_pad, device=None):
        self.n_pad = torch.as_tensor(n_pad, dtype=torch.long, device=device)  # (B,) pads before each row
        if self.n_pad.dim() != 1 or (self.n_pad < 0).any() or (self.n_pad >= max_len).any():
            raise ValueError(f"n_pad must list, for each row, how many of the {max_len} slots are left "
                             f"padding (0 .. max_len - 1); got {self.n_pad.tolist()}.")
        self.max_len, self.length = max_len, 0  # slots available / filled
        self.keys: list[torch.Tensor | None] = [None] * n_layer  # per layer (B, nh, max_len, hs)
        self.values: list[torch.Tensor | None] = [None] * n_layer  # per layer (B, nh, max_len, hs)
        self._mask = None  # ((length, T), mask): one mask per step, shared by every layer

    @property
    def batch_size(self) -> int:
        return self.n_pad.numel()

    def positions(self, T: int) -> torch.Tensor:
        """Position ids ``(B, T)`` of the next ``T`` slots: a row's first real token is 0 (pads: 0 too)."""
        slots = torch.arange(self.length, self.length + T, device=self.n_pad.device)  # (T,)
        return (slots[None, :] - self.n_pad[:, None]).clamp(min=0)  # (B, T)

    def mask(self, T: int) -> torch.Tensor:
        """``(B, 1, T, length + T)`` bool, True = may attend: the next ``T`` slots see the real
        tokens up to themselves. A pad slot sees itself only, so no row is fully masked (no NaN)."""
        if self._mask is None or self._mask[0] != (self.length, T):
            q_slot = torch.arange(self.length, self.length + T, device=self.n_pad.device)  # (T,)
            k_slot = torch.arange(self.length + T, device=self.n_pad.device)  # (Tk,)
            causal = k_slot[None, :] <= q_slot[:, None]  # (T, Tk): no future
            real = k_slot[None, :] >= self.n_pad[:, None]  # (B, Tk): not a pad
            itself = k_slot[None, :] == q_slot[:, None]  # (T, Tk)
            allowed = causal & (real[:, None, :] | itself)  # (B, T, Tk)
            self._mask = ((self.length, T), allowed[:, None])  # (B, 1, T, Tk): the same for every head
        return self._mask[1]

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new tokens' ``k``, ``v`` (B, nh, T, hs) into layer ``layer``; return all
        keys and values so far, each ``(B, nh, length + T, hs)``."""
        B, nh, T, hs = k.shape
        if B != self.batch_size:
            raise ValueError(f"the cache holds {self.batch_size} rows but the input has {B}.")
        if self.length + T > self.max_len:
            raise ValueError(f"the KV cache is full: it holds {self.max_len} slots, {self.length} are "
                             f"filled, and {T} more tokens came. Make a cache with a larger max_len.")
        if self.keys[layer] is None:  # first use: allocate the whole buffer once
            self.keys[layer] = k.new_zeros(B, nh, self.max_len, hs)  # (B, nh, max_len, hs)
            self.values[layer] = v.new_zeros(B, nh, self.max_len, hs)  # (B, nh, max_len, hs)
        end = self.length + T
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]  # views, no copy

    def advance(self, T: int) -> None:
        """The ``T`` new tokens are stored in every layer: move on to the next free slot."""
        self.length += T

    def select(self, rows: torch.Tensor) -> KVCache:
        """A cache of the given rows ``(B',)`` (ids may repeat): copy one prompt's cache to sample
        several replies from it, or keep only the rows still writing."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.n_pad.device)
        new = KVCache(len(self.keys), self.max_len, self.n_pad[rows], device=self.n_pad.device)
        new.length = self.length
        new.keys = [None if k is None else k[rows] for k in self.keys]  # (B', nh, max_len, hs)
        new.values = [None if v is None else v[rows] for v in self.values]
        return new

    def __repr__(self) -> str:
        return (f"KVCache(layers={len(self.keys)}, rows={self.batch_size}, "
                f"filled={self.length}/{self.max_len})")


# ---------------------------------------------------------------------------
# Friendly checks: say what is wrong in course words, before torch does.
# ---------------------------------------------------------------------------
def _check_qk(q: torch.Tensor, k: torch.Tensor) -> None:
    if q.dim() < 2 or k.dim() < 2:
        raise ValueError(f"q and k need at least 2 dimensions (..., T, head_size); "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}.")
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k must have the same last dimension (head size) to take dot "
                         f"products: q has {q.size(-1)} (shape {tuple(q.shape)}), k has {k.size(-1)} "
                         f"(shape {tuple(k.shape)}).")


def _allowed(mask: torch.Tensor | None, causal: bool, scores: torch.Tensor) -> torch.Tensor | None:
    """Combine an explicit bool mask and the causal triangle; None means 'all allowed'."""
    Tq, Tk = scores.shape[-2:]
    allowed = causal_mask(Tq, Tk, device=scores.device) if causal else None
    if mask is None:
        return allowed
    _check_mask(mask, scores)
    return mask if allowed is None else mask & allowed


def _check_mask(mask, scores: torch.Tensor) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor (True = may attend, False = blocked), got {got}. "
                         f"If you have an additive 0/-inf mask m, pass mask=(m == 0); "
                         f"if you have 1/0 numbers, pass mask=m.bool().")
    try:
        torch.broadcast_shapes(mask.shape, scores.shape)
        ok = mask.dim() >= 2 and tuple(mask.shape[-2:]) == tuple(scores.shape[-2:])
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, but the attention scores have shape "
                         f"{tuple(scores.shape)} (..., Tq, Tk): the mask needs one entry per "
                         f"(query, key) pair, i.e. shape (Tq, Tk) = {tuple(scores.shape[-2:])} "
                         f"or one that broadcasts to {tuple(scores.shape)}.")


def _divisors_hint(n: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, 16) + 1) if n % d == 0)

"""From-scratch attention vs torch's fused kernel. Run by hand: ``python bench/attention_speed.py``.

Times one forward + backward pass of causal self-attention (batch 8, 4 heads,
head size 32) at several sequence lengths, for the from-scratch path
(``utils.attention.scaled_dot_product_attention``: builds the full (T, T) weight
matrix) and torch's fused ``F.scaled_dot_product_attention``. Prints the median
of a few repetitions and the speed ratio. Timings vary by machine and by what
else is running; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from utils import setup  # noqa: E402
from utils.attention import scaled_dot_product_attention  # noqa: E402


def scratch(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal=True)


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def time_fwd_bwd(fn, B: int, nh: int, T: int, hs: int, reps: int) -> float:
    """Median seconds of one forward + backward pass of ``fn`` on random (B, nh, T, hs) inputs."""
    q, k, v = (torch.randn(B, nh, T, hs, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(B, nh, T, hs)
    times = []
    for _ in range(reps + 1):  # the first run warms up and is dropped
        start = time.perf_counter()
        fn(q, k, v).backward(grad_out)
        times.append(time.perf_counter() - start)
        q.grad = k.grad = v.grad = None
    return statistics.median(times[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the course's, at most 2); 1 is steadier on a busy machine")
    args = parser.parse_args(argv)
    setup(seed=0)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"causal attention, forward + backward, B={args.batch} nh={args.heads} hs={args.head_size}, "
          f"median of {args.reps}, {torch.get_num_threads()} thread(s)")
    print(f"{'T':>6} | {'scratch ms':>10} | {'fused ms':>9} | {'scratch/fused':>13}")
    print("-" * 48)
    for fn in (scratch, fused):  # warm up both paths once (first calls pay one-off costs)
        time_fwd_bwd(fn, args.batch, args.heads, args.lengths[0], args.head_size, reps=1)
    for T in args.lengths:
        shape = (args.batch, args.heads, T, args.head_size)
        t_scratch = time_fwd_bwd(scratch, *shape, reps=args.reps)
        t_fused = time_fwd_bwd(fused, *shape, reps=args.reps)
        print(f"{T:>6} | {t_scratch * 1e3:>10.2f} | {t_fused * 1e3:>9.2f} | {t_scratch / t_fused:>12.2f}x")


if __name__ == "__main__":
    main()

"""How fast does the course model train, and how close is that to the CPU's peak?

Run by hand: ``python bench/train_speed.py [--threads 2] [--quick]``. Prints:

1. **Matmul throughput** (GFLOP/s) of square fp32 and bf16 matmuls through
   ``torch.mm`` / ``F.linear`` (MKL for fp32) and through oneDNN (mkldnn) entry
   points, each checked against a float64 product so that a path which silently
   computes in bf16/tf32 is labelled and *not* counted as fp32. The peak used
   for MFU below is ``utils.pretrain.matmul_peak_gflops`` (square ``torch.mm``),
   the same function notebook 04 calls; the best path of the table is printed
   next to it.
2. **Training throughput** of the course GPT (default ``GPTConfig``, PRETRAIN
   recipe shape: batch 32 x 128 tokens), one step = the course's own
   ``utils.train.train_step`` (fused AdamW from ``make_optimizer``, grad clip), for
   a few variants: from-scratch vs fused attention, fp32 vs bf16 autocast (in
   which ``utils.attention`` keeps the attention kernel in fp32), threads,
   a nanoGPT-shaped baseline and other batch sizes; with model FLOPs
   (``utils.pretrain.train_flops_per_token``, the course's one convention) and MFU,
   and the loss / gradient error of each variant vs fp32.
3. **Where a step's time goes** (batch, forward, backward, clip, optimizer),
   then the update phases timed alone (with torch's for-loop AdamW, the
   course's optimizer before ``fused=True``, for comparison).

A full run takes about a minute, ``--quick`` about 15 s (measured with
``--threads 1`` on a busy 2-core machine: 48 s and 13 s). On a busy machine use ``--threads 1``: two threads that share their cores
with other jobs stall each other and the 2-thread numbers become meaningless.

Variants are timed *interleaved* (a few steps of each in turn, several rounds)
so that a change in background load hits all of them alike; tokens/s is the
median over the timed steps after warm-up (the best step is shown too). Timings
vary by machine and load; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from utils.model import GPT, GPTConfig  # noqa: E402
from utils.pretrain import PRETRAIN as PRETRAIN_RECIPE  # noqa: E402
from utils.pretrain import (  # noqa: E402
    load_lm_data,
    matmul_params,
    matmul_peak_gflops,
    median_seconds,
    train_flops_per_token,
)
from utils.repro import bf16_is_fast, n_threads  # noqa: E402
from utils.text import load_tokenizer  # noqa: E402
from utils.train import lm_loss, lr_at, make_optimizer, random_batches, train_step  # noqa: E402

PRETRAIN = replace(PRETRAIN_RECIPE.train, bf16=bf16_is_fast())  # the loop's settings, bf16 decided here
PRETRAIN_BATCH = PRETRAIN_RECIPE.batch_size

FP32_MAX_REL_ERR = 1e-5  # fp32 products of n<=4096 land near 1e-7..1e-6; tf32 ~1e-4, bf16 ~3e-3


# ---------------------------------------------------------------------------
# 1. matmul throughput
# ---------------------------------------------------------------------------
class fp32_precision:
    """Temporarily set ``torch.backends.mkldnn.matmul.fp32_precision`` (restored on exit)."""

    def __init__(self, value: str):
        self.value = value

    def __enter__(self):
        self.old = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.mkldnn.matmul.fp32_precision = self.value

    def __exit__(self, *exc):
        torch.backends.mkldnn.matmul.fp32_precision = self.old


def matmul_paths(a: torch.Tensor, w: torch.Tensor):
    """(name, dtype, fn) for ``y = a @ w.T``; ``fn()`` returns y (dense or mkldnn)."""
    lp = torch.ops.mkldnn._linear_pointwise
    wt = w.t().contiguous()  # (k, n): torch.mm(a, wt) = a @ w.T with both operands row-major
    am, wm = a.to_mkldnn(), w.to_mkldnn()  # oneDNN's own (opaque) tensor layout
    w_packed = torch.ops.mkldnn._reorder_linear_weight(w, a.size(0))  # weight pre-blocked for oneDNN
    ab, wb, wtb = a.bfloat16(), w.bfloat16(), wt.bfloat16()

    def mm_with(prec):
        def fn():
            with fp32_precision(prec):
                return torch.mm(a, wt)
        return fn

    return [
        ("torch.mm (MKL sgemm)", "fp32", lambda: torch.mm(a, wt)),
        ("F.linear = nn.Linear (MKL)", "fp32", lambda: F.linear(a, w)),
        ("oneDNN mkldnn._linear_pointwise", "fp32", lambda: lp(a, w, None, "none", [], "")),
        ("oneDNN _linear_pointwise, prepacked W", "fp32", lambda: lp(a, w_packed, None, "none", [], "")),
        ("oneDNN mkldnn_linear, to_mkldnn()", "fp32", lambda: torch._C._nn.mkldnn_linear(am, wm, None)),
        ("torch.mm, mkldnn fp32_precision=tf32", "fp32", mm_with("tf32")),
        ("torch.mm, mkldnn fp32_precision=bf16", "fp32", mm_with("bf16")),
        ("torch.mm, bf16 tensors (oneDNN)", "bf16", lambda: torch.mm(ab, wtb)),
        ("oneDNN _linear_pointwise, bf16", "bf16", lambda: lp(ab, wb, None, "none", [], "")),
    ]


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    y = y.to_dense() if y.is_mkldnn else y
    return float((y.double() - ref).norm() / ref.norm())


def precision_label(name: str, dtype: str, err: float) -> str:
    if dtype == "bf16":
        return "bf16"
    if err <= FP32_MAX_REL_ERR:  # a reduced-precision setting that this CPU ignores: still MKL fp32
        return "fp32 (no effect)" if "fp32_precision=" in name else "fp32"
    return "NOT fp32 (~bf16)" if err > 1e-3 else "NOT fp32 (~tf32)"


def bench_matmuls(sizes, reps: int, only: set | None = None):
    """Rows (shape, path, precision, rel err, median GF/s, best GF/s) for each (m, k, n) in sizes.

    ``only``: names of the paths to time (default: all).
    """
    rows = []
    for m, k, n in sizes:
        gen = torch.Generator().manual_seed(0)
        a, w = torch.randn(m, k, generator=gen), torch.randn(n, k, generator=gen)
        ref = a.double() @ w.double().T
        flops = 2 * m * k * n
        for name, dtype, fn in matmul_paths(a, w):
            if only is not None and name not in only:
                continue
            try:
                err = relative_error(fn(), ref)
                med, best = median_seconds(fn, reps)
            except RuntimeError as exc:  # a path this torch build lacks
                print(f"  ({name} unavailable at {m}x{k}x{n}: {str(exc).splitlines()[0]})")
                continue
            rows.append(dict(shape=f"{m}x{k}x{n}", square=m == k == n, path=name, dtype=dtype,
                             label=precision_label(name, dtype, err), err=err,
                             gflops=flops / med / 1e9, best=flops / best / 1e9))
    return rows


def nominal_fp32_peak(threads: int) -> tuple[float, str]:
    """threads x FLOP/cycle x base clock from /proc/cpuinfo: a sanity bound, not a measurement."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return float("nan"), "unknown (no /proc/cpuinfo)"
    mhz = next((float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")), 0.0)
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 8  # fp32 FMA lanes x 2 x 2 ports
    peak = threads * per_cycle * mhz / 1e3
    return peak, (f"{threads} core(s) x {per_cycle} FLOP/cycle x {mhz / 1e3:.2f} GHz "
                  f"(2 FMA ports assumed; turbo raises it, 1-port SKUs halve it)")


# ---------------------------------------------------------------------------
# 2. training throughput
# ---------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    cfg: GPTConfig = field(default_factory=GPTConfig)
    batch: int = PRETRAIN_BATCH
    bf16: bool = False  # bf16 autocast (utils.attention keeps the attention kernel in fp32)
    fused_attn: bool = True
    threads: int | None = None  # None: --threads
    key: str = ""  # short name for the ratios printed under the table
    ref: str = ""  # key of the variant an other-batch-shape row is compared with
    times: list = field(default_factory=list)  # filled in by run()

    def prepare(self, data_x, data_y, threads: int):
        T = self.cfg.block_size
        x, y = data_x[:, :T].contiguous(), data_y[:, :T].contiguous()
        self.threads = self.threads or threads
        self.recipe = replace(PRETRAIN, bf16=self.bf16)
        torch.manual_seed(0)
        self.model = GPT(self.cfg)
        for block in self.model.blocks:
            block.attn.use_fused = self.fused_attn
        self.opt = make_optimizer(self.model, self.recipe)
        self.batches = random_batches(x, y, self.batch, seed=0)
        self.step = 0

    def run(self, n: int, timed: bool):
        torch.set_num_threads(self.threads)
        for _ in range(n):
            start = time.perf_counter()
            x, y = self.batches(self.step)
            train_step(self.model, self.opt, lm_loss, x, y, lr_at(self.step, self.recipe),
                       self.recipe.grad_clip, self.recipe.bf16)
            elapsed = time.perf_counter() - start
            self.step += 1
            if timed:
                self.times.append(elapsed)

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.cfg.block_size

    def release(self):
        del self.model, self.opt, self.batches


def variants(threads: int, quick: bool) -> list[Variant]:
    """The variants to time; ``quick`` leaves out the 1-thread bf16 row and other batch shapes."""
    bf16 = bf16_is_fast()
    nano = GPTConfig(block_size=64, n_layer=4, n_head=4, d_model=128, bias=False)
    vs = [
        Variant("(a) fp32, from-scratch attention", fused_attn=False, key="a"),
        Variant(f"(b) fp32, fused SDPA{' [PRETRAIN]' if not bf16 else ''}", key="b"),
        Variant(f"(c) bf16 autocast, SDPA in fp32{' [PRETRAIN]' if bf16 else ''}", bf16=True, key="c"),
    ]
    if threads != 1:
        vs += [Variant("(d) = (b) with 1 thread", threads=1, key="d")]
        if not quick:
            vs += [Variant("(d') = (c) with 1 thread", bf16=True, threads=1, key="dc")]
    vs += [Variant("nanoGPT-shaped baseline (B=12, T=64, no bias)", cfg=nano, batch=12, key="nanogpt")]
    if not quick:  # same model, other batch shapes (changes the recipe, not the model)
        vs += [Variant("(b) batch 16 x 128", batch=16, ref="b"),
               Variant("(b) batch 64 x 128", batch=64, ref="b"),
               Variant("(c) batch 64 x 128", batch=64, bf16=True, ref="c"),
               Variant("fixed cost per step: (b) at B=1, T=8", batch=1, cfg=GPTConfig(block_size=8))]
    return vs


def gradient_error(data_x, data_y, threads: int) -> list[tuple[str, float, float]]:
    """(name, |loss - loss_fp32|, |g - g_fp32| / |g_fp32|) on one batch, same weights, vs fp32 fused."""
    def loss_and_grad(**kw):
        v = Variant("check", **kw)
        v.prepare(data_x, data_y, threads)
        x, y = v.batches(0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.bf16):
            loss = lm_loss(v.model, x, y)
        loss.backward()
        return float(loss.detach()), torch.cat([p.grad.flatten() for p in v.model.parameters()])
    ref_loss, ref_g = loss_and_grad()
    out = []
    for name, kw in [("(a) fp32 from-scratch attention", {"fused_attn": False}),
                     ("(c) bf16 autocast, SDPA in fp32", {"bf16": True})]:
        loss, g = loss_and_grad(**kw)
        out.append((name, abs(loss - ref_loss), float((g - ref_g).norm() / ref_g.norm())))
    return out


def step_breakdown(data_x, data_y, threads: int, bf16: bool, steps: int) -> dict[str, float]:
    """Median ms of each phase of ``train_step`` (its code, split by timers) over ``steps`` steps."""
    v = Variant("breakdown", bf16=bf16)
    v.prepare(data_x, data_y, threads)
    v.run(2, timed=False)
    torch.set_num_threads(v.threads)
    model, opt, cfg = v.model, v.opt, v.recipe
    phases = {k: [] for k in ("batch", "forward+loss", "zero_grad", "backward", "clip", "opt.step",
                              "other (train(), lr, item)")}
    for _ in range(steps):
        t0 = time.perf_counter()
        x, y = v.batches(v.step)
        t1 = time.perf_counter()
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_at(v.step, cfg)
        t2 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = lm_loss(model, x, y)
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        loss.backward()
        t5 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        t6 = time.perf_counter()
        opt.step()
        t7 = time.perf_counter()
        loss.item()
        t8 = time.perf_counter()
        v.step += 1
        for k, dt in zip(phases, (t1 - t0, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t2 - t1 + t8 - t7)):
            phases[k].append(dt)
    return {k: statistics.median(ts) * 1e3 for k, ts in phases.items()}


def bench_update(threads: int, reps: int) -> list[tuple[str, float, float]]:
    """(name, median ms, best ms) of the update phases alone on the course model (random grads)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT()
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-2
    course = make_optimizer(model, PRETRAIN)
    loop = torch.optim.AdamW(model.parameters(), lr=PRETRAIN.lr, betas=PRETRAIN.betas)  # CPU default: for-loop
    rows = []
    for name, fn in [("opt.step(): course AdamW (fused=True)", course.step),
                     ("opt.step(): AdamW for-loop (course before fused)", loop.step),
                     ("clip_grad_norm_ (course step)", lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)),
                     ("model.train() (every step)", model.train),
                     ("opt.zero_grad(set_to_none=True)", lambda: course.zero_grad(set_to_none=True))]:
        med, best = median_seconds(fn, reps, warmup=3)
        rows.append((name, med * 1e3, best * 1e3))
    return rows


# ---------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------
def cpu_summary() -> str:
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown CPU"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln for ln in info.splitlines() if ln.startswith("flags")), "").split()
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} [{' '.join(have)}]"


def busy_before_start(seconds: float = 0.5) -> float | None:
    """Fraction of all CPUs busy (other processes) over ``seconds``, from /proc/stat; None if unknown."""
    def sample():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals)  # idle + iowait, total
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def load_note() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the course's choice, the cores available, at most 2)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps (~30 s)")
    args = parser.parse_args(argv)
    threads = args.threads or n_threads()
    torch.set_num_threads(threads)
    t_start = time.perf_counter()

    print(f"torch {torch.__version__}, {threads} thread(s), {cpu_summary()}")
    print(f"bf16_is_fast() = {bf16_is_fast()}  (PRETRAIN.bf16 = {PRETRAIN.bf16}); "
          f"mkldnn.matmul.fp32_precision = {torch.backends.mkldnn.matmul.fp32_precision!r}; {load_note()}")
    busy = busy_before_start()
    if busy is not None:
        print(f"CPU busy with other work just before the start: {busy:.0%} of {os.cpu_count()} core(s)"
              + ("  -- NOT idle: timings below are low and noisy." if busy > 0.15 else ""))

    # ---- 1. matmuls
    sizes = [(1024, 1024, 1024)] if args.quick else [(1024, 1024, 1024), (2048, 2048, 2048)]
    sizes += [(PRETRAIN_BATCH * 128, 128, 512)]  # the model's biggest matmul: MLP fc, (B*T, d) @ (d, 4d)
    reps = 3 if args.quick else 7
    print(f"\n== 1. matmul throughput: y = a @ w.T, a (m, k), w (n, k); 2mkn FLOPs; "
          f"median of {reps} after 2 warm-up ==")
    rows = bench_matmuls(sizes, reps)
    print(f"{'m x k x n':>15} | {'path':<39} | {'computes in':<17} | {'rel err':>8} | "
          f"{'GFLOP/s':>8} | {'best':>7}")
    print("-" * 110)
    for r in rows:
        print(f"{r['shape']:>15} | {r['path']:<39} | {r['label']:<17} | {r['err']:>8.1e} | "
              f"{r['gflops']:>8.1f} | {r['best']:>7.1f}")
    fp32 = [r for r in rows if r["square"] and r["label"] == "fp32"]
    bf16 = [r for r in rows if r["square"] and r["label"] == "bf16"]
    peak = max(fp32, key=lambda r: r["gflops"])
    peak16 = max(bf16, key=lambda r: r["gflops"]) if bf16 else None
    nominal, how = nominal_fp32_peak(threads)
    print(f"rel err = |y - y_float64| / |y_float64|; 'fp32' needs <= {FP32_MAX_REL_ERR:g}. Paths that "
          f"are NOT fp32 (and settings with no effect, = torch.mm) are not counted for the fp32 peak.")
    print(f"best fp32 path in the table (square sizes): {peak['gflops']:.1f} GFLOP/s via {peak['path']} "
          f"at {peak['shape']}")
    if peak16:
        print(f"best bf16 path: {peak16['gflops']:.1f} GFLOP/s via {peak16['path']} at {peak16['shape']} "
              f"({peak16['gflops'] / peak['gflops']:.1f}x fp32)")
    print(f"nominal fp32 peak for comparison: {nominal:.0f} GFLOP/s = {how}")
    if peak["gflops"] > 1.5 * nominal:
        print("  WARNING: the fp32 peak is far above the nominal bound: check the path really computes in fp32.")
    squares = tuple(m for m, k, n in sizes if m == k == n)
    peaks = {}  # threads -> (fp32, bf16) GFLOP/s: utils.pretrain.matmul_peak_gflops, the peak notebook 04 uses
    for t in dict.fromkeys((threads, 1)):  # the 1-thread training rows get their own peak
        torch.set_num_threads(t)
        peaks[t] = tuple(matmul_peak_gflops(dtype, squares, reps) for dtype in (torch.float32, torch.bfloat16))
    torch.set_num_threads(threads)
    print("peak for MFU (utils.pretrain.matmul_peak_gflops: best median of square torch.mm, as notebook 04 "
          "measures it): " + "; ".join(f"{t} thread(s) fp32 {p32:.1f}, bf16 {p16:.1f} GFLOP/s"
                                       for t, (p32, p16) in peaks.items()))

    # ---- 2. training
    tok = load_tokenizer()
    data = load_lm_data(tok, GPTConfig().block_size)
    vs = variants(threads, args.quick)
    warmup, rounds, per_round = (1, 2, 3) if args.quick else (2, 3, 5)
    for v in vs:
        v.prepare(data.x_train, data.y_train, threads)
        v.run(warmup, timed=False)
    for _ in range(rounds):  # interleaved: background load changes hit every variant alike
        for v in vs:
            v.run(per_round, timed=True)
    report_training(vs, peaks, warmup, rounds, per_round)

    print("precision vs fp32 fused (b), one batch, same weights: |loss difference| and relative gradient error")
    for name, dloss, gerr in gradient_error(data.x_train, data.y_train, threads):
        print(f"  {name:<32} loss {dloss:.1e}   gradient {gerr:.1e}")

    # ---- 3. breakdown
    n = 3 if args.quick else 8
    print(f"\n== 3. where a step's time goes (ms, median of {n}; the course step split by timers) ==")
    cols = [("(b) fp32", False), ("(c) bf16", True)]
    results = [step_breakdown(data.x_train, data.y_train, threads, b, n) for _, b in cols]
    print(f"{'phase':<28}" + "".join(f" | {c:>13}" for c, _ in cols))
    for phase in results[0]:
        print(f"{phase:<28}" + "".join(f" | {r[phase]:>13.2f}" for r in results))
    print(f"{'sum':<28}" + "".join(f" | {sum(r.values()):>13.2f}" for r in results))
    reps = 20 if args.quick else 50
    print(f"\nupdate phases alone, course model, {threads} thread(s), median of {reps} (ms per step):")
    for name, med, best in bench_update(threads, reps):
        print(f"  {name:<50} {med:>7.2f}  (best {best:.2f})")
    print(f"\n{load_note()}; total {time.perf_counter() - t_start:.0f} s")


def report_training(vs: list[Variant], peaks: dict, warmup: int, rounds: int, per_round: int) -> None:
    """Print the training table; ``peaks``: threads -> (fp32 GFLOP/s, bf16 GFLOP/s or None)."""
    cfg = GPTConfig()
    n_mm = matmul_params(cfg)
    print(f"\n== 2. training throughput: the course step (utils.train.train_step: fused AdamW, clip 1.0) on "
          f"TinyWorld batches; {warmup} warm-up steps, then median of {rounds} rounds x {per_round} "
          f"steps, variants interleaved ==")
    print(f"course model: {GPT(cfg).num_parameters():,} parameters; matmul parameters N = "
          f"{cfg.n_layer} x 12 x {cfg.d_model}^2 + {cfg.vocab_size} x {cfg.d_model} (tied head) = {n_mm:,} "
          f"(biases, norms, position embedding left out)")
    print(f"model FLOPs per token (utils.pretrain.train_flops_per_token) = 6 N + 12 n_layer T d_model = "
          f"{6 * n_mm:,} + {12 * cfg.n_layer * cfg.block_size * cfg.d_model:,} = "
          f"{train_flops_per_token(cfg) / 1e6:.2f} MFLOP at T={cfg.block_size}; "
          f"tokens = all B x T positions (padding included)")
    print("MFU = model GFLOP/s / measured fp32 peak at the row's thread count ("
          + ", ".join(f"{t} thr: {p32:.0f}" for t, (p32, _) in sorted(peaks.items())) + " GFLOP/s)"
          + "; bf16 MFU: bf16 rows vs the bf16 peak ("
          + ", ".join(f"{t} thr: {p16:.0f}" for t, (_, p16) in sorted(peaks.items()) if p16) + ")")
    head = (f"{'variant':<47} | {'thr':>3} | {'B x T':>8} | {'step ms':>8} | {'tokens/s':>9} | "
            f"{'best':>8} | {'GFLOP/s':>7} | {'MFU':>6} | {'bf16 MFU':>8}")
    print(head)
    print("-" * len(head))
    tps, first_shape = {}, next((v for v in vs if v.ref), None)
    for v in vs:
        if v is first_shape:
            print("-- other batch shapes (changes the recipe, not the model):")
        med, best = statistics.median(v.times), min(v.times)
        v.tps = v.tokens_per_step / med
        gf = v.tps * train_flops_per_token(v.cfg) / 1e9
        p32, p16 = peaks[v.threads]
        mfu16 = f"{gf / p16:>8.1%}" if (v.bf16 and p16) else f"{'-':>8}"
        print(f"{v.name:<47} | {v.threads:>3} | {v.batch:>3} x {v.cfg.block_size:<3} | {med * 1e3:>8.1f} | "
              f"{v.tps:>9,.0f} | {v.tokens_per_step / best:>8,.0f} | {gf:>7.1f} | {gf / p32:>6.1%} | "
              f"{mfu16}")
        if v.key:
            tps[v.key] = v.tps
    print(f"\nfused vs from-scratch attention (b)/(a): {tps['b'] / tps['a']:.2f}x;  "
          f"bf16 autocast vs fp32 (c)/(b): {tps['c'] / tps['b']:.2f}x")
    if "d" in tps:
        print(f"{vs[0].threads} threads vs 1: (b)/(d) {tps['b'] / tps['d']:.2f}x"
              + (f", (c)/(d') {tps['c'] / tps['dc']:.2f}x" if "dc" in tps else ""))
    pre = "c" if PRETRAIN.bf16 else "b"
    print(f"course default (PRETRAIN = ({pre})) vs nanoGPT-shaped baseline: {tps[pre]:,.0f} / "
          f"{tps['nanogpt']:,.0f} tokens/s = {tps[pre] / tps['nanogpt']:.2f}x;  fp32 (b)/nanoGPT = "
          f"{tps['b'] / tps['nanogpt']:.2f}x")
    print("  (before utils.attention kept SDPA in fp32 under bf16 autocast and AdamW was fused, bf16 "
          "autocast ran at ~0.95x fp32: see bench/README.md)")
    for v in vs:
        if v.ref:
            print(f"  {v.name:<45} {v.tps / tps[v.ref] - 1:>+7.1%} tokens/s vs ({v.ref})")
    for v in vs:
        v.release()


if __name__ == "__main__":
    main()

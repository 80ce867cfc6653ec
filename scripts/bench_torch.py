"""PyTorch baseline for `topoprobe bench`: times full BERT training steps on random data.

One step is what src/train/bench.ts times: forward pass of a BERT encoder with a tanh pooler and a
classifier head (training mode, dropout 0.1), mean cross-entropy, backward, global-norm gradient
clipping to 1.0, and an AdamW update (lr 2e-5, weight decay 0.01, none on biases and LayerNorm
weights). Inputs are random ids (position 0 set to 101 % vocab) with an all-ones attention mask.
It prints one JSON line to stdout (median ms per step, tokens per second, all step timings) and
progress lines to stderr. The model is written in plain torch so nothing beyond torch is needed.

With --gemm it instead measures single-precision torch.mm throughput in GFLOP/s, for a
1024x1024x1024 product and for the BERT-base FFN shape [2048,768]x[768,3072].

--device cuda runs the same on the GPU (synchronising before each clock reading). --tf32 off (the
default) keeps matrix products in true fp32, the precision of the webgpu backend; --tf32 on lets
them use TF32 tensor cores, for reference. `matmul_tflop_per_s` counts the step's matrix products
as src/train/bench.ts's stepMatmulFlops does.

Run it with the system interpreter after `apt-get install python3-torch`:

    /usr/bin/python3 scripts/bench_torch.py --layers 12 --hidden 768 --heads 12 --inter 3072 --batch 32 --seq 64
    /usr/bin/python3 scripts/bench_torch.py --gemm --threads 8
    python3 scripts/bench_torch.py --device cuda --tf32 off --layers 24 --hidden 1024 --heads 16 --inter 4096 --batch 32 --seq 128
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    """One post-LN transformer layer: self-attention and feed-forward, each with residual + LayerNorm."""

    def __init__(self, hidden, heads, inter, dropout):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.inter = nn.Linear(hidden, inter)
        self.out = nn.Linear(inter, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def split(self, x):  # [B, S, H] -> [B, heads, S, head_dim]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_bias):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        probs = self.drop(F.softmax(scores, dim=-1))
        ctx = (probs @ v).transpose(1, 2).reshape(x.shape)
        x = self.attn_norm(x + self.drop(self.attn_out(ctx)))
        h = self.out(F.gelu(self.inter(x)))  # default F.gelu is the exact erf form
        return self.out_norm(x + self.drop(h))


class BertClassifier(nn.Module):
    def __init__(self, a, max_positions=512, type_vocab=2, dropout=0.1):
        super().__init__()
        self.word = nn.Embedding(a.vocab, a.hidden)
        self.position = nn.Embedding(max_positions, a.hidden)
        self.token_type = nn.Embedding(type_vocab, a.hidden)
        self.emb_norm = nn.LayerNorm(a.hidden, eps=1e-12)
        self.layers = nn.ModuleList(Layer(a.hidden, a.heads, a.inter, dropout) for _ in range(a.layers))
        self.pooler = nn.Linear(a.hidden, a.hidden)
        self.classifier = nn.Linear(a.hidden, a.labels)
        self.drop = nn.Dropout(dropout)
        for m in self.modules():  # BERT's initialisation: N(0, 0.02) weights, zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, mask):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids))
        x = self.drop(self.emb_norm(x))
        mask_bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.drop(pooled))


def sync(a):
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


def step_matmul_flops(a):
    """The step's matrix-product FLOPs: 3x the forward's (see stepMatmulFlops in src/train/bench.ts)."""
    n = a.batch * a.seq
    per_layer = 4 * 2 * n * a.hidden ** 2 + 2 * 2 * n * a.hidden * a.inter + 2 * 2 * a.batch * a.seq ** 2 * a.hidden
    head = 2 * a.batch * a.hidden ** 2 + 2 * a.batch * a.hidden * a.labels
    return 3 * (a.layers * per_layer + head)


def bench_training(a):
    torch.manual_seed(a.seed)
    model = BertClassifier(a, max_positions=max(512, a.seq)).train().to(a.device)
    no_decay = lambda name: name.endswith(".bias") or "norm" in name
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": 0.01},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ], lr=2e-5)
    params = [p for _, p in named]

    gen = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=gen)
    ids[:, 0] = 101 % a.vocab
    mask = torch.ones(a.batch, a.seq, dtype=torch.long)
    labels = torch.randint(0, a.labels, (a.batch,), generator=gen)
    ids, mask, labels = ids.to(a.device), mask.to(a.device), labels.to(a.device)

    def step(warmup, i):
        sync(a)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(ids, mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the TS step also reads the loss back
        sync(a)
        ms = (time.perf_counter() - t0) * 1000
        print(f"{'warm-up' if warmup else 'step'} {i + 1}: {ms:.0f} ms", file=sys.stderr)
        return ms

    warmup_ms = [step(True, i) for i in range(a.warmup)]
    step_ms = [step(False, i) for i in range(a.steps)]
    ms = statistics.median(step_ms)
    return {
        "parameters": sum(p.numel() for p in params),
        "ms_per_step": ms,
        "tokens_per_s": a.batch * a.seq * 1000 / ms,
        "matmul_tflop_per_step": step_matmul_flops(a) / 1e12,
        "matmul_tflop_per_s": step_matmul_flops(a) / 1e12 / (ms / 1000),
        "step_ms": step_ms,
        "warmup_ms": warmup_ms,
    }


def bench_gemm(a):
    results = {}
    chain = 20 if a.device.startswith("cuda") else 1
    shapes = {"square_1024": (1024, 1024, 1024), "ffn_2048x768x3072": (2048, 768, 3072), "large_ffn_4096x1024x4096": (4096, 1024, 4096)}
    for name, (m, k, n) in shapes.items():
        x, y = torch.randn(m, k, device=a.device), torch.randn(k, n, device=a.device)
        for _ in range(2):
            torch.mm(x, y)
        secs = []
        for _ in range(5):
            sync(a)
            t0 = time.perf_counter()
            for _ in range(chain):
                torch.mm(x, y)
            sync(a)
            secs.append((time.perf_counter() - t0) / chain)
        s = statistics.median(secs)
        results[name] = {"m": m, "k": k, "n": n, "ms": s * 1000, "gflops": 2 * m * n * k / s / 1e9}
        print(f"{name}: {results[name]['gflops']:.1f} GFLOP/s", file=sys.stderr)
    return {"gemm": results}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default in [("layers", 2), ("hidden", 128), ("heads", 2), ("inter", 512), ("batch", 8), ("seq", 64),
                          ("vocab", 30522), ("labels", 2), ("warmup", 1), ("steps", 3), ("seed", 0)]:
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own choice)")
    p.add_argument("--gemm", action="store_true", help="measure torch.mm GFLOP/s instead of training steps")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--tf32", choices=["on", "off"], default="off", help="allow TF32 matrix products on the GPU (default off: fp32)")
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    try:  # PyTorch 2.9 and later; older ones assert (not AttributeError) on the unknown name
        torch.backends.cuda.matmul.fp32_precision  # noqa: B018
        new_api = True
    except (AssertionError, AttributeError):
        new_api = False
    if new_api:
        torch.backends.cuda.matmul.fp32_precision = "tf32" if a.tf32 == "on" else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if a.tf32 == "on" else "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
        torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
    if a.hidden % a.heads:
        p.error(f"--hidden {a.hidden} must be a multiple of --heads {a.heads}")
    if min(a.layers, a.hidden, a.heads, a.inter, a.batch, a.seq, a.vocab, a.labels, a.steps) < 1 or a.warmup < 0:
        p.error("sizes and --steps must be positive, --warmup non-negative")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    out = {"framework": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu", "config": vars(a)}
    out.update(bench_gemm(a) if a.gemm else bench_training(a))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

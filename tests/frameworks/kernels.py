"""Hand-written low-precision kernels with their own backward, and planted bugs.

Each kernel is a ``torch.autograd.Function`` whose forward and backward take and return the
inputs' dtype (bfloat16 or float16) and compute in float32 inside, as fused kernels do; the
``bug`` argument plants one mistake in the backward. Each has a plain reference that autograd
differentiates. Shared by tests/frameworks/test_against.py and benchmarks/against.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

BUG_HEAD = (0, 1)  # (batch, head) whose dV the "dv_head_scale" bug scales by 1.01
TILE = 16  # the side of the tile the "dk_transposed_tile" bug transposes


def _f32(*xs: torch.Tensor) -> list[torch.Tensor]:
    return [x.float() for x in xs]


class Attention(torch.autograd.Function):
    """softmax(Q Kᵀ / √d) V over (batch, heads, N, d); bugs: dv_head_scale, dq_no_scale,
    dk_transposed_tile, dv_heads_swapped."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bug: str | None):
        scale = q.shape[-1] ** -0.5
        q32, k32, v32 = _f32(q, k, v)
        p = torch.softmax(q32 @ k32.transpose(-1, -2) * scale, dim=-1)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale, ctx.bug = scale, bug
        return (p @ v32).to(q.dtype)

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor):
        q, k, v, p = ctx.saved_tensors
        q32, k32, v32, do32 = _f32(q, k, v, do)
        dv = p.transpose(-1, -2) @ do32
        dp = do32 @ v32.transpose(-1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))
        dq = ds @ k32 * (1.0 if ctx.bug == "dq_no_scale" else ctx.scale)
        dk = ds.transpose(-1, -2) @ q32 * ctx.scale
        if ctx.bug and ctx.bug.startswith("dv_head_scale"):  # "dv_head_scale:1.005": a factor
            dv[BUG_HEAD] *= float(ctx.bug.partition(":")[2] or 1.01)
        if ctx.bug == "dv_heads_swapped":  # heads 1 and 2 of batch 0 written to each other
            dv[0, [1, 2]] = dv[0, [2, 1]]
        if ctx.bug == "dk_transposed_tile":
            tile = dk[BUG_HEAD][TILE:2 * TILE, :TILE]
            dk[BUG_HEAD][TILE:2 * TILE, :TILE] = tile.transpose(0, 1).clone()
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None


class AttentionRounded(torch.autograd.Function):
    """Attention that rounds S, P, dP and dS to the inputs' dtype between its matmuls, as
    FlashAttention does with P: correct, and less accurate than a float32 interior."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bug: str | None):
        low, scale = q.dtype, q.shape[-1] ** -0.5
        q32, k32, v32 = _f32(q, k, v)
        s = (q32 @ k32.transpose(-1, -2) * scale).to(low)
        p = torch.softmax(s.float(), dim=-1).to(low)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return (p.float() @ v32).to(low)

    @staticmethod
    def backward(ctx: Any, do: torch.Tensor):
        q, k, v, p = ctx.saved_tensors
        low = q.dtype
        q32, k32, v32, do32, p32 = _f32(q, k, v, do, p)
        dv = p32.transpose(-1, -2) @ do32
        dp = (do32 @ v32.transpose(-1, -2)).to(low).float()
        ds = (p32 * (dp - (dp * p32).sum(-1, keepdim=True))).to(low).float()
        dq, dk = ds @ k32 * ctx.scale, ds.transpose(-1, -2) @ q32 * ctx.scale
        return dq.to(low), dk.to(low), dv.to(low), None


def attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


class LayerNorm(torch.autograd.Function):
    """Layer norm over the last axis with weight and bias; bug: ln_no_mean (dx lacks the
    −mean(γ·dy) term)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, bug: str | None):
        x32, w32, b32 = _f32(x, w, b)
        mu = x32.mean(-1, keepdim=True)
        rstd = torch.rsqrt(((x32 - mu) ** 2).mean(-1, keepdim=True) + 1e-5)
        xhat = (x32 - mu) * rstd
        ctx.save_for_backward(xhat, rstd, w)
        ctx.bug = bug
        return (xhat * w32 + b32).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor):
        xhat, rstd, w = ctx.saved_tensors
        dy32, w32 = _f32(dy, w)
        g = dy32 * w32
        mean_g = 0.0 if ctx.bug == "ln_no_mean" else g.mean(-1, keepdim=True)
        dx = rstd * (g - mean_g - xhat * (g * xhat).mean(-1, keepdim=True))
        dw, db = (dy32 * xhat).sum(0), dy32.sum(0)
        return dx.to(dy.dtype), dw.to(w.dtype), db.to(w.dtype), None


def layer_norm_ref(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


class RMSNorm(torch.autograd.Function):
    """x / rms(x) · w over the last axis."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, bug: str | None):
        x32, w32 = _f32(x, w)
        rstd = torch.rsqrt((x32 * x32).mean(-1, keepdim=True) + 1e-6)
        ctx.save_for_backward(x32 * rstd, rstd, w)
        return (x32 * rstd * w32).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor):
        xhat, rstd, w = ctx.saved_tensors
        dy32, w32 = _f32(dy, w)
        g = dy32 * w32
        dx = rstd * (g - xhat * (g * xhat).mean(-1, keepdim=True))
        return dx.to(dy.dtype), (dy32 * xhat).sum(0).to(w.dtype), None


def rms_norm_ref(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w


class CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of logits (N, V) at integer targets, softmax fused into the loss."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, target: torch.Tensor, bug: str | None):
        z32 = z.float()
        lse = torch.logsumexp(z32, dim=-1)
        ctx.save_for_backward(z32, lse, target)
        return (lse - z32.gather(1, target[:, None])[:, 0]).mean().to(z.dtype)

    @staticmethod
    def backward(ctx: Any, dloss: torch.Tensor):
        z32, lse, target = ctx.saved_tensors
        grad = torch.exp(z32 - lse[:, None])
        grad[torch.arange(z32.shape[0], device=z32.device), target] -= 1.0
        return (grad * dloss.float() / z32.shape[0]).to(dloss.dtype), None, None


def cross_entropy_ref(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(z, target)


class GeluMLP(torch.autograd.Function):
    """gelu(x W1) W2; bug: low_accumulation (dW1's sum over the batch kept in the inputs'
    dtype, 4 rows at a time)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, bug: str | None):
        x32, w132, w232 = _f32(x, w1, w2)
        h = x32 @ w132
        ctx.save_for_backward(x, w1, w2, h)
        ctx.bug = bug
        return (F.gelu(h) @ w232).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor):
        x, w1, w2, h = ctx.saved_tensors
        x32, w132, w232, dy32 = _f32(x, w1, w2, dy)
        a = F.gelu(h)
        dw2 = a.transpose(0, 1) @ dy32
        gelu_prime = 0.5 * (1 + torch.erf(h / math.sqrt(2))) + h * torch.exp(-h * h / 2) / math.sqrt(
            2 * math.pi)
        dh = (dy32 @ w232.transpose(0, 1)) * gelu_prime
        dx = dh @ w132.transpose(0, 1)
        if ctx.bug == "low_accumulation":
            dw1 = torch.zeros(w1.shape, dtype=x.dtype, device=x.device)
            for i in range(0, x.shape[0], 4):  # a partial sum rounded to the low dtype each step
                dw1 = (dw1.float() + x32[i:i + 4].transpose(0, 1) @ dh[i:i + 4]).to(x.dtype)
        else:
            dw1 = x32.transpose(0, 1) @ dh
        return dx.to(x.dtype), dw1.to(x.dtype), dw2.to(x.dtype), None


def gelu_mlp_ref(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    return F.gelu(x @ w1) @ w2


def kernel(function: type[torch.autograd.Function], bug: str | None = None) -> Callable[..., Any]:
    """The Function as a plain callable with the bug planted (None: the correct kernel)."""
    return lambda *xs: function.apply(*xs, bug)


def inputs(name: str, size: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Seeded float64 inputs of each kernel, ``size`` setting the long axis; weights scaled so
    the activations stay of order one."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int, std: float = 1.0) -> torch.Tensor:
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    if name in ("attention", "attention_rounded"):
        return randn(2, 4, size, 32), randn(2, 4, size, 32), randn(2, 4, size, 32)
    if name == "layer_norm":
        return randn(size, 64), 1 + 0.1 * randn(64), 0.1 * randn(64)
    if name == "rms_norm":
        return randn(size, 64), 1 + 0.1 * randn(64)
    if name == "cross_entropy":
        return randn(size, 96, std=2.0), torch.randint(0, 96, (size,), generator=g)
    if name == "gelu_mlp":
        return randn(size, 32), randn(32, 64, std=32**-0.5), randn(64, 32, std=64**-0.5)
    raise ValueError(name)


KERNELS: dict[str, tuple[type[torch.autograd.Function], Callable[..., Any], tuple[str, ...]]] = {
    "attention": (Attention, attention_ref, ("q", "k", "v")),
    "attention_rounded": (AttentionRounded, attention_ref, ("q", "k", "v")),
    "layer_norm": (LayerNorm, layer_norm_ref, ("x", "w", "b")),
    "rms_norm": (RMSNorm, rms_norm_ref, ("x", "w")),
    "cross_entropy": (CrossEntropy, cross_entropy_ref, ("z", "target")),
    "gelu_mlp": (GeluMLP, gelu_mlp_ref, ("x", "w1", "w2")),
}

# (kernel, bug, dtype, size, the gradient that must fail, the kind expected)
BUGS = (
    ("attention", "dv_head_scale", "bfloat16", 64, "dv", "scale"),
    ("attention", "dq_no_scale", "bfloat16", 64, "dq", "softmax scale"),
    ("attention", "dk_transposed_tile", "bfloat16", 64, "dk", "transposed"),
    ("attention", "dv_heads_swapped", "float16", 32, "dv", "permuted"),
    ("layer_norm", "ln_no_mean", "bfloat16", 32, "dx", "missing term"),
    ("gelu_mlp", "low_accumulation", "float16", 512, "dw1", "accumulation"),
)

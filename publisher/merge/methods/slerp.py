"""SLERP: spherical interpolation between the base and one other model.

mergekit 0.1.5's numerics: float32 work (float64 for float64 inputs) over the flattened
tensor in chunks of 2^20 elements: the norms are norms of per-chunk norms, the cosine is a
sum of per-chunk dots of the normalised chunks, nearly colinear pairs (|cos| > 0.9995) fall
back to a lerp, and each chunk of the result is rounded to the input dtype as it is written.
So float32 temporaries stay at one chunk whatever the tensor size.
"""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.common import aligned, float_dtype
from publisher.merge.methods.registry import MergeMethod, Param, TensorJob, in_range, register

DOT_THRESHOLD = 0.9995
EPS = 1e-8
CHUNK = 1 << 20


def _chunks(n: int) -> range:
    return range(0, n, CHUNK)


def slerp_pair(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Interpolate from v0 (t=0) to v1 (t=1); result in v0's dtype and shape."""
    dtype = float_dtype(v0.dtype)
    a = v0.reshape(1, -1)
    b = v1.reshape(1, -1)
    tt = torch.tensor([t], dtype=torch.float32).reshape(-1, 1).to(dtype)
    n = a.shape[1]
    if n == 0:
        return v0.clone()
    na = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(a[:, s : s + CHUNK].to(dtype), dim=1, keepdim=True) for s in _chunks(n)]),
        dim=0,
    )
    nb = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(b[:, s : s + CHUNK].to(dtype), dim=1, keepdim=True) for s in _chunks(n)]),
        dim=0,
    )
    na = torch.where(na > EPS, na, 1)
    nb = torch.where(nb > EPS, nb, 1)
    parts = []
    for s in _chunks(n):
        x = a[:, s : s + CHUNK].to(dtype) / na
        y = b[:, s : s + CHUNK].to(dtype) / nb
        parts.append((x * y).sum(dim=1, keepdim=True))
    dot = torch.stack(parts).sum(dim=0).clamp(-1, 1)
    lerp = dot.abs() > DOT_THRESHOLD
    theta = torch.acos(torch.where(lerp, 0, dot))
    sin_theta = torch.sin(theta)
    ca = torch.where(lerp, 1 - tt, torch.sin((1 - tt) * theta) / sin_theta)
    cb = torch.where(lerp, tt, torch.sin(tt * theta) / sin_theta)
    out = torch.empty_like(a)
    for s in _chunks(n):
        out[:, s : s + CHUNK] = ca * a[:, s : s + CHUNK].to(dtype) + cb * b[:, s : s + CHUNK].to(dtype)
    return out.reshape(v0.shape)


def slerp(job: TensorJob) -> torch.Tensor:
    tensors = aligned(job)
    if len(tensors) == 1:  # an optional tensor only one parent has
        return tensors[0]
    assert job.base is not None
    return slerp_pair(float(job.params["t"]), tensors[job.base], tensors[1 - job.base])


register(
    MergeMethod(
        name="slerp",
        fn=slerp,
        params=(Param("t", check=in_range(0.0, 1.0)),),
        needs_base=True,
        min_models=2,
        max_models=2,
        pretty_name="SLERP",
        reference_url="https://en.wikipedia.org/wiki/Slerp",
        workspace=0.3,  # float32 chunks of 2^20 elements
    )
)

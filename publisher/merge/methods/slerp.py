"""SLERP: spherical interpolation between the base and one other model.

The angle comes from the whole tensor (both flattened, normalised), so it is a reduction
over the tensor; the interpolation itself is then elementwise and runs in row bands so
float32 temporaries stay small. Like mergekit, the coefficients and the blend are float32
and the result is cast back to the base tensor's dtype; nearly colinear tensors fall back
to a plain lerp.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from publisher.merge.methods.common import common_submatrix, row_bands
from publisher.merge.methods.registry import MergeMethod, Param, TensorJob, in_range, register

DOT_THRESHOLD = 0.9995
EPS = 1e-8


def _reductions(v0: torch.Tensor, v1: torch.Tensor) -> tuple[float, float, float]:
    """(|v0|², |v1|², v0·v1) in float64, band by band."""
    s00 = s11 = s01 = 0.0
    for band in row_bands(v0):
        a = v0[band].to(torch.float64)
        b = v1[band].to(torch.float64)
        s00 += float(torch.dot(a.reshape(-1), a.reshape(-1)))
        s11 += float(torch.dot(b.reshape(-1), b.reshape(-1)))
        s01 += float(torch.dot(a.reshape(-1), b.reshape(-1)))
    return s00, s11, s01


def slerp_coefficients(t: float, v0: torch.Tensor, v1: torch.Tensor) -> tuple[np.float32, np.float32] | None:
    """(s0, s1) such that result = s0*v0 + s1*v1, or None when the tensors are colinear (lerp)."""
    s00, s11, s01 = _reductions(v0, v1)
    n0, n1 = math.sqrt(s00), math.sqrt(s11)
    d0 = n0 if n0 > EPS else 1.0
    d1 = n1 if n1 > EPS else 1.0
    dot = np.float32(s01 / (d0 * d1))
    if abs(dot) > DOT_THRESHOLD:
        return None
    theta_0 = np.arccos(dot)
    sin_theta_0 = np.sin(theta_0)
    theta_t = theta_0 * np.float32(t)
    s0 = np.sin(theta_0 - theta_t) / sin_theta_0
    s1 = np.sin(theta_t) / sin_theta_0
    return np.float32(s0), np.float32(s1)


def slerp(job: TensorJob) -> torch.Tensor:
    if len(job.tensors) == 1:
        return job.tensors[0]
    assert job.base is not None
    other = 1 - job.base
    v0, v1 = job.tensors[job.base], job.tensors[other]
    if job.is_embed:
        v0, v1 = common_submatrix([v0, v1])
    t = float(job.params["t"])
    out_dtype = job.compute_dtype or v0.dtype
    coeffs = slerp_coefficients(t, v0, v1)
    out = torch.empty(v0.shape, dtype=out_dtype)
    if coeffs is None:
        c0, c1 = float(np.float32(1 - t)), float(np.float32(t))
    else:
        c0, c1 = float(coeffs[0]), float(coeffs[1])
    for band in row_bands(out):
        a = v0[band].to(torch.float32)
        b = v1[band].to(torch.float32)
        out[band] = (a.mul_(c0)).add_(b.mul_(c1))
    return out


register(
    MergeMethod(
        name="slerp",
        fn=slerp,
        params=(Param("t", check=in_range(0.0, 1.0)),),
        needs_base=True,
        min_models=2,
        max_models=2,
        workspace=0.2,
        pretty_name="SLERP",
        reference_url="https://en.wikipedia.org/wiki/Slerp",
    )
)

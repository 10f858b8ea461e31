"""GPSToken's CUDA renderer (gscuda/gs.cu) written in torch, for goldens and benchmarks.

gs.cu's forward for one image: pixel (i, j) at x = 2j/(W-1) - 1, y = 2i/(H-1) - 1 (evaluated in
double and rounded to float, as the CUDA code's double literals do), unnormalised Gaussian
weight, truncated where |dx| > dmax sigma_x or |dy| > dmax sigma_y, weights x features summed
in float32. Its gradient is torch autograd's (the CUDA backward's formulas are those of
autodiff here: pallas_kernels/gaussian_splat tests both against each other). Torch only.
"""
import torch


def splat(sigmas, coords, colors, size, dmax):
  """[S, 3] (sigma_x, sigma_y, rho), [S, 2] (x, y), [S, C] -> [h, w, C] float32."""
  h, w = size[:2]
  gx = (2.0 * torch.arange(w, dtype=torch.float64) / (w - 1) - 1.0).float()
  gy = (2.0 * torch.arange(h, dtype=torch.float64) / (h - 1) - 1.0).float()
  sx, sy, rho = sigmas[:, 0], sigmas[:, 1], sigmas[:, 2]
  dx = gx[None, None, :] - coords[:, 0, None, None]  # [S, 1, w]
  dy = gy[None, :, None] - coords[:, 1, None, None]  # [S, h, 1]
  dx, dy = torch.broadcast_tensors(dx, dy)
  keep = ((dx <= dmax * sx[:, None, None]) & (dx >= -dmax * sx[:, None, None])
          & (dy <= dmax * sy[:, None, None]) & (dy >= -dmax * sy[:, None, None]))
  isx, isy = (1.0 / sx)[:, None, None], (1.0 / sy)[:, None, None]
  r = rho[:, None, None]
  v = isx * isx * dx * dx - 2 * r * dx * dy * isx * isy + dy * dy * isy * isy
  v = torch.exp(v * (-(1.0 / (1 - r * r)) / 2.0)) * keep
  return torch.einsum("shw,sc->hwc", v, colors)

"""Golden outputs of the official GPSToken model (xtudbxk/GPSToken) on seeded weights.

The official `models/gpstoken.py` is imported from a local checkout (never copied). Two of its
imports cannot run here and get small torch stand-ins written for this script:
  * `gscuda.gswrapper` (a CUDA extension built at import): `gs.cu`'s forward in torch,
    per pixel: grid 2i/(W-1)-1, unnormalised exp, truncation where |dx| > dmax sigma_x or
    |dy| > dmax sigma_y, additive sum in float32.
  * `torchvision.ops.RoIAlign` (torchvision's C++ ops do not load against torch 2.13 here):
    torchvision's CPU roi_align for aligned=True and sampling_ratio <= 0 (per-RoI adaptive
    sample grid ceil(size / bins), bilinear weights, samples outside [-1, size] count as 0).

The model is a small GPSToken (2 blocks of width 64, decoder ch 32) in the official key
layout, filled from `zoo/convert/seeded.py` (`gpstoken_state_dict`); the initial Gaussians and RoIs are the official
`adaptive_initialize` outputs already stored in gpstoken_init.npz, so 512 x 512 inputs are
four of those photos as tiles. Run in a venv with torch (no jax needed):

  python3.11 -m venv /tmp/gpsvenv
  /tmp/gpsvenv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  /tmp/gpsvenv/bin/pip install numpy safetensors
  git clone https://github.com/xtudbxk/GPSToken /tmp/official/GPSToken
  /tmp/gpsvenv/bin/python tests/golden/make_gpstoken_golden.py \
      --official_repo /tmp/official/GPSToken

Writes, next to this file:
  gpstoken.npz                 per case (256: two photos; 512: one image of four tiles): the
                               photo names (their pixels are in gpstoken_init.npz), initial
                               Gaussians and RoIs, tile tokens, canvas tokens, the rendered grid
                               and the reconstructions ([-1, 1], unclipped; 512 both through
                               the tiled decoder and tile by tile), pixels and grid strided
  gpstoken_golden_shapes.json  {key: shape} of the small model
  gpstoken_official_shapes.json  {gpstoken_s64|m128|l256: {key: shape}} of the released
                               configs (meta device)
"""
import argparse
import importlib
import json
import math
import pathlib
import sys
import types

import numpy as np

from golden_common import load_seeded_module, shape_table
from torch_gs_reference import splat

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
NUM = 64  # Gaussians per tile, from gpstoken_init.npz
PHOTOS_256 = ("astronaut", "coffee")
TILES_512 = ("astronaut", "coffee", "chelsea", "rocket")  # row-major
PIXEL_STRIDE = 4  # reconstructions are stored at every 4th row / column
GRID_STRIDE = 2
GOLDEN_GPS = dict(rois=8, gpsenc_n=2, gpsenc_c=64, gps_c=16, gps_num=NUM, gps_dmax=3,
                  gps_adaptive_w=2.5, gps_rs=[64, 64])
GOLDEN_DECODER = dict(double_z=False, z_channels=16, resolution=256, in_channels=3, out_ch=3,
                      ch=32, ch_mult=[1, 2, 4], num_res_blocks=1, attn_resolutions=[],
                      dropout=0.0)
RELEASED = {  # configs/gpstoken_{s64,m128,l256}.yaml
    "gpstoken_s64": (64, 16), "gpstoken_m128": (128, 16), "gpstoken_l256": (256, 32)}


def roi_align(torch, features, rois, size):
  """torchvision roi_align(aligned=True, spatial_scale=1, sampling_ratio=-1), NCHW."""
  _, c, height, width = features.shape
  out = torch.zeros(rois.shape[0], c, size, size, dtype=features.dtype)
  for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
    img = features[int(b)]
    start_x, start_y = x1 - 0.5, y1 - 0.5
    bin_w, bin_h = (x2 - x1) / size, (y2 - y1) / size
    grid_w, grid_h = math.ceil((x2 - x1) / size), math.ceil((y2 - y1) / size)
    count = max(grid_w * grid_h, 1)
    for py in range(size):
      for px in range(size):
        acc = torch.zeros(c, dtype=features.dtype)
        for iy in range(grid_h):
          y = start_y + py * bin_h + (iy + 0.5) * bin_h / grid_h
          for ix in range(grid_w):
            x = start_x + px * bin_w + (ix + 0.5) * bin_w / grid_w
            acc = acc + bilinear(img, y, x, height, width)
        out[k, :, py, px] = acc / count
  return out


def bilinear(img, y, x, height, width):
  if y < -1.0 or y > height or x < -1.0 or x > width:
    return img.new_zeros(img.shape[0])
  y, x = max(y, 0.0), max(x, 0.0)
  y0, x0 = int(y), int(x)
  if y0 >= height - 1:
    y0 = y1 = height - 1
    y = float(y0)
  else:
    y1 = y0 + 1
  if x0 >= width - 1:
    x0 = x1 = width - 1
    x = float(x0)
  else:
    x1 = x0 + 1
  ly, lx = y - y0, x - x0
  hy, hx = 1.0 - ly, 1.0 - lx
  return (hy * hx * img[:, y0, x0] + hy * lx * img[:, y0, x1] + ly * hx * img[:, y1, x0]
          + ly * lx * img[:, y1, x1])


def install_stand_ins(torch):
  gswrapper = types.ModuleType("gscuda.gswrapper")
  gswrapper.gaussiansplatting_render = lambda s, c, f, size, dmax=100: splat(
      s.float(), c.float(), f.float(), size, dmax)
  sys.modules["gscuda"] = types.ModuleType("gscuda")
  sys.modules["gscuda.gswrapper"] = gswrapper

  class RoIAlign(torch.nn.Module):
    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned):
      super().__init__()
      assert spatial_scale == 1.0 and sampling_ratio <= 0 and aligned, "stand-in covers only this"
      self.size = output_size[0]

    def forward(self, features, rois):
      return roi_align(torch, features, rois, self.size)

  tv = types.ModuleType("torchvision")
  tv.ops = types.SimpleNamespace(RoIAlign=RoIAlign)
  sys.modules["torchvision"] = tv


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  import torch
  install_stand_ins(torch)
  sys.path.insert(0, str(args.official_repo.resolve()))
  GPSToken = importlib.import_module("models.gpstoken").GPSToken
  seeded = load_seeded_module()
  torch.manual_seed(0)  # only the official inits use it; all weights are overwritten

  official = {}
  with torch.device("meta"):
    for name, (num, c) in RELEASED.items():
      gps = dict(GOLDEN_GPS, gpsenc_n=30, gpsenc_c=512, gps_num=num, gps_c=c)
      dec = dict(GOLDEN_DECODER, ch=128, num_res_blocks=2, z_channels=c)
      official[name] = shape_table(GPSToken(gps, dec))

  model = GPSToken(dict(GOLDEN_GPS), dict(GOLDEN_DECODER))
  shapes = shape_table(model)
  arrays = seeded.gpstoken_state_dict({k: tuple(v) for k, v in shapes.items()}, SEED)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
  model.eval()

  init = np.load(HERE / "gpstoken_init.npz")
  nhwc = lambda t: t.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
  to_model = lambda u8: torch.from_numpy(
      (u8 / 127.5 - 1.0).astype(np.float32)).permute(0, 3, 1, 2).contiguous()  # datasets/base.py
  golden = {}
  with torch.no_grad():
    # 256: a batch of two photos.
    u8 = np.stack([init[f"{n}/image"] for n in PHOTOS_256])
    g = torch.from_numpy(np.stack([init[f"{n}/{NUM}/gaussians"] for n in PHOTOS_256])).float()
    r = torch.from_numpy(np.stack([init[f"{n}/{NUM}/rois"] for n in PHOTOS_256])).float()
    tokens = model.encode(to_model(u8), init_gpscodes=g, regions=r.clone())
    grid = model.render_gpstoken(tokens, size=GOLDEN_GPS["gps_rs"], dmax=GOLDEN_GPS["gps_dmax"])
    recon = model.decode(tokens)
    golden |= {"256/photos": np.array(PHOTOS_256), "256/gaussians": g.numpy(), "256/rois": r.numpy(),
               "256/tokens": tokens.numpy(), "256/grid": nhwc(grid)[:, ::GRID_STRIDE, ::GRID_STRIDE],
               "256/recon": nhwc(recon)[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE]}

    # 512: one image of four tiles, folded as inference_gsptoken.py does.
    tiles = np.stack([init[f"{n}/image"] for n in TILES_512])
    u8 = tiles.reshape(2, 2, 256, 256, 3).transpose(0, 2, 1, 3, 4).reshape(1, 512, 512, 3)
    g = torch.from_numpy(np.concatenate([init[f"{n}/{NUM}/gaussians"] for n in TILES_512])[None])
    r = torch.from_numpy(np.concatenate([init[f"{n}/{NUM}/rois"] for n in TILES_512])[None])
    img = to_model(u8)
    folded = img.reshape(1, 3, 2, 256, 2, 256).permute(0, 2, 4, 1, 3, 5).reshape(4, 3, 256, 256)
    tile_tokens = model.encode(folded, init_gpscodes=g.float().reshape(4, NUM, 5),
                               regions=r.float().reshape(4, NUM, 4).clone())
    canvas = model.adjust_gpstoken(tile_tokens, 2)
    grid = model.render_gpstoken(tile_tokens, size=GOLDEN_GPS["gps_rs"],
                                 dmax=GOLDEN_GPS["gps_dmax"], _np=2)
    recon_tiled = model.decode(tile_tokens, _np=2)
    per_tile = model.decode(tile_tokens, _np=1)  # the L256 path of inference_gsptoken.py
    recon_separate = per_tile.reshape(1, 2, 2, 3, 256, 256).permute(0, 3, 1, 4, 2, 5).reshape(
        1, 3, 512, 512)
    golden |= {"512/tiles": np.array(TILES_512), "512/gaussians": g.numpy(), "512/rois": r.numpy(),
               "512/tile_tokens": tile_tokens.numpy(), "512/tokens": canvas.numpy(),
               "512/grid": nhwc(grid)[:, ::GRID_STRIDE, ::GRID_STRIDE],
               "512/recon_tiled": nhwc(recon_tiled)[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE],
               "512/recon_separate": nhwc(recon_separate)[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE]}
  golden["pixel_stride"] = np.int32(PIXEL_STRIDE)
  golden["grid_stride"] = np.int32(GRID_STRIDE)
  for k, v in golden.items():
    if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
      raise ValueError(f"non-finite values in {k}")
  np.savez_compressed(args.out_dir / "gpstoken.npz", **golden)
  (args.out_dir / "gpstoken_golden_shapes.json").write_text(json.dumps(shapes, indent=1) + "\n")
  (args.out_dir / "gpstoken_official_shapes.json").write_text(
      json.dumps(official, indent=1) + "\n")
  print(", ".join(f"{k}{list(np.shape(v))}" for k, v in golden.items()))
  for k in ("256/recon", "512/recon_tiled", "512/recon_separate", "256/tokens"):
    print(f"{k}: std {golden[k].std():.4f} min {golden[k].min():.3f} max {golden[k].max():.3f}")
  for name, table in official.items():
    print(f"{name}: {len(table)} tensors, {sum(int(np.prod(s)) for s in table.values())} values")


if __name__ == "__main__":
  main()

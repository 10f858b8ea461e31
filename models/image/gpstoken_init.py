"""GPSToken's entropy-driven initial Gaussians (`adaptive_initialize`), reproduced exactly.

The official function (xtudbxk/GPSToken, datasets/adaptivegps.py) splits a grey tile into
`num_gaussians` regions: it repeatedly takes the region of highest complexity, entropy^w x
area, where the entropy is that of a 512-bin histogram over [-5.5, 5.5] of the Sobel edge
magnitude of the region resized to 64 x 64 (OpenCV bilinear; Sobel 3x3, replicated border),
and halves it along its longer side (square regions: along x or y, whichever child has the
smaller complexity; ties split along y). Regions whose extents are both <= `min_size` are not
split. Each region gives a Gaussian centred on it with sigma = 2/3 of its normalised extent,
rho = 0, and an RoI box.

Here: the same regions in the same order (ties go to the region found first, as the official
stable sort does), with OpenCV's float32 resize arithmetic written out in numpy so no OpenCV is
needed, the complexities of a split's candidate halves computed together, and a heap instead
of a sort per split. Pure numpy: it runs in data-loader workers.
"""
import functools
import heapq

import numpy as np

RESIZED = 64  # regions are resized to 64 x 64 before the Sobel filter
HIST_BINS, HIST_RANGE = 512, (-5.5, 5.5)
TILE = 256  # the official loader initialises each 256 x 256 tile on its own


@functools.lru_cache(maxsize=None)
def _linear_taps(src: int, dst: int = RESIZED):
  """OpenCV INTER_LINEAR source indices and float32 weights for one axis."""
  scale = 1.0 / (dst / src)
  fx = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
  sx = np.floor(fx).astype(np.int64)
  fx = fx - sx.astype(np.float32)
  left = sx < 0
  fx[left], sx[left] = 0.0, 0
  right = sx >= src - 1
  fx[right], sx[right] = 0.0, src - 1
  return sx, np.minimum(sx + 1, src - 1), (np.float32(1.0) - fx), fx


def _lerp(a, b, t):
  """a + (b - a) * t rounded once to float32 (a fused multiply-add), as OpenCV's IPP path."""
  return ((b - a).astype(np.float64) * t + a).astype(np.float32)


def _resize(stack):
  """[K, h, w] float32 -> [K, 64, 64] float32, as cv2.resize(..., INTER_LINEAR) computes it.

  opencv-python wheels resize float32 images through IPP, whose arithmetic is a fused lerp per
  pass (measured against opencv-python-headless 4.9.0.80, the official pin: equal except for
  rare last-bit differences next to the right border, which do not move the histograms).
  """
  _, h, w = stack.shape
  x0, x1, _, a1 = _linear_taps(w)
  rows = _lerp(stack[:, :, x0], stack[:, :, x1], a1)  # horizontal pass
  y0, y1, _, b1 = _linear_taps(h)
  return _lerp(rows[:, y0, :], rows[:, y1, :], b1[:, None])  # vertical pass


_EDGES = np.linspace(*HIST_RANGE, HIST_BINS + 1)  # np.histogram's bin edges
# Regions whose halves are scored in one batch: the popped one and the next in line, which
# are likely to be split soon (fewer, larger numpy calls; unused scores cost a little).
LOOKAHEAD = 4


def _edge_magnitude(stack):
  """Sobel 3x3 x and y derivatives in float64 with a replicated border; their magnitude.

  In place on one padded buffer (half the time of the plain expression, the same sums in the
  same order: every value bit-identical)."""
  k = stack.shape[0]
  p = np.empty((k, RESIZED + 2, RESIZED + 2))
  p[:, 1:-1, 1:-1] = stack
  p[:, 0, 1:-1], p[:, -1, 1:-1] = stack[:, 0], stack[:, -1]
  p[:, :, 0], p[:, :, -1] = p[:, :, 1], p[:, :, -2]
  smooth_y = p[:, 1:-1, :] * 2.0  # (2 b + a) + c == (a + 2 b) + c: addition commutes
  smooth_y += p[:, :-2, :]
  smooth_y += p[:, 2:, :]
  smooth_x = p[:, :, 1:-1] * 2.0
  smooth_x += p[:, :, :-2]
  smooth_x += p[:, :, 2:]
  gx = smooth_y[:, :, 2:] - smooth_y[:, :, :-2]
  gy = smooth_x[:, 2:, :] - smooth_x[:, :-2, :]
  gx *= gx
  gy *= gy
  gx += gy
  return np.sqrt(gx, out=gx)


def _histograms(values):
  """[K, ...] -> [K, 512] counts, binned exactly as np.histogram(bins=512, range=(-5.5, 5.5))."""
  lo, hi = HIST_RANGE
  k = values.shape[0]
  v = values.reshape(k, -1)
  keep = (v >= lo) & (v <= hi)
  idx = np.clip(((v - lo) * (HIST_BINS / (hi - lo))).astype(np.intp), 0, HIST_BINS - 1)
  idx -= v < _EDGES[idx]  # numpy's corrections for rounding at the bin edges
  idx += (v >= _EDGES[idx + 1]) & (idx != HIST_BINS - 1)
  flat = np.where(keep, idx + HIST_BINS * np.arange(k)[:, None], k * HIST_BINS)
  return np.bincount(flat.ravel(), minlength=k * HIST_BINS + 1)[:-1].reshape(k, HIST_BINS)


def complexities(grey, regions, weight: float):
  """entropy^weight x area of each region ((r0, r1), (c0, c1)) (inclusive) of a grey tile."""
  by_shape = {}
  for i, ((r0, r1), (c0, c1)) in enumerate(regions):
    by_shape.setdefault((r1 - r0 + 1, c1 - c0 + 1), []).append(i)
  resized, order = [], []
  for members in by_shape.values():
    crops = np.stack([grey[regions[i][0][0]:regions[i][0][1] + 1,
                           regions[i][1][0]:regions[i][1][1] + 1] for i in members])
    resized.append(_resize((crops + np.float32(1.0)) / np.float32(2.0)))
    order += members
  hist = _histograms(_edge_magnitude(np.concatenate(resized)))
  p = hist / (hist.sum(axis=1, keepdims=True) + 1e-5)
  entropy = -np.sum(p * np.log2(p + 1e-10), axis=1)
  out = [0.0] * len(regions)
  for i, e in zip(order, entropy):
    (r0, r1), (c0, c1) = regions[i]
    out[i] = float(e) ** weight * (r1 - r0 + 1) * (c1 - c0 + 1)
  return out


def _halves(rows, cols, min_size):
  """A region's candidate splits as official: (x halves or [], y halves or [])."""
  (r0, r1), (c0, c1) = rows, cols
  h, w = r1 - r0 + 1, c1 - c0 + 1
  x = [(rows, (c0, c0 + w // 2 - 1)), (rows, (c0 + w // 2, c1))] if w > min_size and w >= h else []
  y = [((r0, r0 + h // 2 - 1), cols), ((r0 + h // 2, r1), cols)] if h > min_size and h >= w else []
  if not x and not y:  # unreachable for splittable regions; the official code fails here too
    raise ValueError(f"region rows {rows} cols {cols} cannot be split")
  return x, y


def _pick(x, y, score):
  """[(complexity, (rows, cols))] of the two children the official rule keeps."""
  scored = lambda halves: [(score[r], r) for r in halves]
  if not y:
    return scored(x)
  if not x:
    return scored(y)
  # A square region: the split whose smaller child is less complex; ties split along y.
  return scored(x) if min(score[x[0]], score[x[1]]) < min(score[y[0]], score[y[1]]) else scored(y)


def _splittable(rows, cols, min_size):
  return rows[1] - rows[0] > min_size or cols[1] - cols[0] > min_size


def initial_gaussians(grey, num_gaussians: int, *, min_size: int = 8, weight: float = 2.5):
  """Initial Gaussians [N, 5] (sigma_x, sigma_y, rho, x, y) and RoIs [N, 4] (x0, y0, x1, y1).

  grey: [h, w] float32 grey tile in [-1, 1] (0.299 R + 0.587 G + 0.114 B of the [-1, 1]
  image), as the official loader computes it. Coordinates are normalised to [-1, 1].
  """
  grey = np.asarray(grey)
  if grey.ndim != 2 or min(grey.shape) < 2:
    raise ValueError(f"grey must be a 2-D tile of at least 2 x 2 pixels; got shape {grey.shape}")
  if grey.dtype != np.float32:
    raise TypeError(f"grey must be float32 (the official loader's dtype); got {grey.dtype}")
  if not np.all(np.isfinite(grey)):
    raise ValueError("grey contains NaN or Inf")
  if num_gaussians < 1:
    raise ValueError(f"num_gaussians must be positive; got {num_gaussians}")
  h, w = grey.shape
  # Heap entries (-complexity, creation order, rows, cols): the order breaks ties as the
  # official stable descending sort does (the earliest-made region first).
  first = ((0, h - 1), (0, w - 1))
  heap = [(-complexities(grey, [first], weight)[0], 0, *first)]
  too_small, made, score = [], 1, {}
  while len(heap) + len(too_small) < num_gaussians:
    while heap and not _splittable(heap[0][2], heap[0][3], min_size):
      too_small.append(heapq.heappop(heap))  # never split, kept in place
    if not heap:
      raise ValueError(f"a {h}x{w} tile has fewer than {num_gaussians} regions larger than "
                       f"{min_size} px; lower num_gaussians or min_size")
    _, _, rows, cols = heapq.heappop(heap)
    x, y = _halves(rows, cols, min_size)
    if any(r not in score for r in x + y):
      batch = [(rows, cols)] + [(e[2], e[3]) for e in heapq.nsmallest(LOOKAHEAD, heap)
                                if _splittable(e[2], e[3], min_size)]
      todo = [r for region in batch for r in sum(_halves(*region, min_size), [])
              if r not in score]
      score.update(zip(todo, complexities(grey, todo, weight)))
    for value, (r, c) in _pick(x, y, score):
      heapq.heappush(heap, (-value, made, r, c))
      made += 1
  if made == 1:
    order = heap
  else:  # the official list: the sorted survivors of the last round, then the last two children
    order = sorted(e for e in heap + too_small if e[1] < made - 2)
    order += sorted((e for e in heap if e[1] >= made - 2), key=lambda e: e[1])
  gaussians, rois = [], []
  for _, _, (r0, r1), (c0, c1) in order:
    gaussians.append(((c1 - c0) / w * 2.0 / 3.0, (r1 - r0) / h * 2.0 / 3.0, 0.0,
                      ((c1 + c0) / 2.0 / (w - 1) - 0.5) * 2.0,
                      ((r1 + r0) / 2.0 / (h - 1) - 0.5) * 2.0))
    rois.append(((c0 / (w - 1) - 0.5) * 2, (r0 / (h - 1) - 0.5) * 2,
                 (c1 / (w - 1) - 0.5) * 2, (r1 / (h - 1) - 0.5) * 2))
  return np.array(gaussians, np.float32), np.array(rois, np.float32)


def grey_image(image01):
  """[H, W, 3] image in [0, 1] -> the official loader's float32 grey image in [-1, 1]."""
  img = (np.asarray(image01, np.float32) * np.float32(2.0) - np.float32(1.0))
  return 0.299 * img[:, :, 0] + 0.587 * img[:, :, 1] + 0.114 * img[:, :, 2]


def initial_gaussians_for_image(image01, num_gaussians: int, *, tile: int = TILE,
                                min_size: int = 8, weight: float = 2.5):
  """Per-tile initialisation of an [H, W, 3] image in [0, 1], tiles in row-major order.

  Returns ([T * N, 5], [T * N, 4]) for T = (H / tile) * (W / tile) tiles, each tile's
  Gaussians in its own normalised coordinates (the model merges them into one canvas).
  """
  image01 = np.asarray(image01)
  h, w = image01.shape[:2]
  if h % tile or w % tile:
    raise ValueError(f"image height and width must be multiples of {tile}; got {h}x{w}")
  grey = grey_image(image01)
  out = [initial_gaussians(grey[i:i + tile, j:j + tile], num_gaussians, min_size=min_size,
                           weight=weight)
         for i in range(0, h, tile) for j in range(0, w, tile)]
  return (np.concatenate([g for g, _ in out]), np.concatenate([r for _, r in out]))

"""Each mesh is normalised and sampled once (zoo/data/mesh_io.py) into a cached `.npz`.

The cache key is the file's path, size and modification time plus the sampling settings and
seed, so an edited mesh or a changed setting is sampled afresh. The cache lives in
$ZOO_CACHE_DIR, or ~/.cache/tokenizer_zoo, under shapes/.
"""
import dataclasses
import hashlib
import os
import pathlib

import numpy as np

from zoo.data import mesh_io

SAMPLING_VERSION = 1  # bump when the sampling changes: old cache files are then ignored
SURFACE_POINTS = 8_192
QUERY_POINTS = 4_096  # of each kind: uniform in the cube, near the surface


@dataclasses.dataclass(frozen=True)
class ShapeSample:
  """One shape in [-1, 1]^3: surface points with unit normals, and occupancy-labelled queries."""
  name: str
  surface: np.ndarray  # [S, 3] float32
  normals: np.ndarray  # [S, 3]
  uniform: np.ndarray  # [Q, 3] uniform in [-1, 1]^3
  uniform_labels: np.ndarray  # [Q] 1 inside, 0 outside
  near: np.ndarray  # [Q, 3] within ~0.02 of the surface
  near_labels: np.ndarray
  watertight: bool
  path: str = ""  # the mesh file it was sampled from (for drawing the original)


def cache_dir() -> pathlib.Path:
  root = os.environ.get("ZOO_CACHE_DIR") or pathlib.Path.home() / ".cache" / "tokenizer_zoo"
  return pathlib.Path(root) / "shapes"


def _key(path: pathlib.Path, seed: int) -> str:
  stat = path.stat()
  text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{SAMPLING_VERSION}|" \
         f"{SURFACE_POINTS}|{QUERY_POINTS}|{seed}"
  return hashlib.sha256(text.encode()).hexdigest()[:24]


def sample_mesh_file(path, name: str, *, seed: int) -> ShapeSample:
  """The cached sample of one mesh file (built on first use); MeshError for a bad file."""
  path = pathlib.Path(path)
  file = cache_dir() / f"{_key(path, seed)}.npz"
  if file.is_file():
    try:
      with np.load(file) as z:
        return ShapeSample(name=name, watertight=bool(z["watertight"]),
                           **{f.name: z[f.name] for f in dataclasses.fields(ShapeSample)
                              if f.name not in ("name", "watertight", "path")},
                           path=str(path))
    except (OSError, ValueError, KeyError):
      pass  # a torn write: sample again
  mesh = mesh_io.load_mesh(path)
  surface, normals = mesh_io.sample_surface(mesh, SURFACE_POINTS, seed)
  uniform, uniform_labels, near, near_labels = mesh_io.sample_queries(mesh, QUERY_POINTS, seed)
  sample = ShapeSample(name, surface, normals, uniform, uniform_labels, near, near_labels,
                       mesh.watertight, str(path))
  file.parent.mkdir(parents=True, exist_ok=True)
  tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
  np.savez(tmp, **{k: v for k, v in dataclasses.asdict(sample).items() if k not in ("name", "path")})
  os.replace(tmp, file)
  return sample

"""Reconstruction of 3D shapes by an occupancy tokenizer, as 3DShape2VecSet's eval.py measures it.

A model is evaluated through three methods: `encode(surface [B, N, 3])` -> tokens or latents,
`decoder_context(tokens)` -> what queries attend to (computed once per shape), and
`occupancy(context, queries [B, Q, 3])` -> logits; `bytes_per_shape` gives the size of the
tokens. Per shape: IoU of the occupancy of the uniform query points (logit >= 0 inside), a mesh
by marching cubes on a (resolution + 1)^3 grid over [-1, 1]^3 (queried in chunks), and Chamfer
distance and F-score at tau between `mesh_points` points sampled on that mesh and as many on
the original mesh (the official compares with ShapeNet's 100k surface points; the 8k cached for
training are too sparse for tau = 0.02: their spacing is about that), from the same seed
(zoo/evals/shape_metrics.py). Writes per-shape JSON lines, the means as
JSON, the reconstructed meshes (OBJ), and PNG views of originals against reconstructions.
"""
import json
import pathlib
import re

import numpy as np
from flax import nnx
from tqdm import tqdm

from zoo.data import mesh_io
from zoo.evals import shape_metrics
from zoo.evals.mesh_render import save_mesh_views


def grid_points(resolution: int) -> np.ndarray:
  """The (resolution + 1)^3 grid over [-1, 1]^3, x slowest: [(R + 1)^3, 3] float32."""
  axis = np.linspace(-1, 1, resolution + 1, dtype=np.float32)
  return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def extract_mesh(logits, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
  """Marching cubes of a [(R+1)]*3 logit grid at `level` -> (vertices in [-1, 1]^3, faces).

  Empty arrays when the grid never crosses the level (all inside or all outside)."""
  from skimage.measure import marching_cubes
  logits = np.asarray(logits, np.float32)
  if not (logits.min() < level < logits.max()):
    return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
  vertices, faces, _, _ = marching_cubes(logits, level)
  return vertices * (2.0 / (logits.shape[0] - 1)) - 1.0, faces.astype(np.int64)


@nnx.jit
def _encode_context(model, surface):
  return model.decoder_context(model.encode(surface))


@nnx.jit
def _occupancy(model, context, queries):
  return model.occupancy(context, queries)


def occupancy_grid(model, context, resolution: int, *, chunk: int = 32_768) -> np.ndarray:
  """Logits on the grid of `grid_points(resolution)`, queried `chunk` points at a time."""
  points = grid_points(resolution)
  chunk = min(chunk, len(points))
  pad = -len(points) % chunk
  points = np.concatenate([points, np.zeros((pad, 3), np.float32)])
  logits = [np.asarray(_occupancy(model, context, points[None, i:i + chunk]))[0]
            for i in range(0, len(points), chunk)]
  return np.concatenate(logits)[:len(points) - pad].reshape((resolution + 1,) * 3)


def _file_name(index: int, name: str) -> str:
  stem = name.rsplit(".", 1)[0] if "/" not in name.rsplit(".", 1)[-1] else name
  return f"{index:04d}_" + re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[-60:]


def evaluate_shapes(model, samples, *, out_dir, results_path=None, resolution: int = 128,
                    num_surface: int | None = None, tau: float = shape_metrics.DEFAULT_TAU,
                    mesh_points: int = 100_000, num_views: int = 4, seed: int = 0,
                    info: dict | None = None) -> dict:
  """Evaluates `samples` (ShapeSamples); returns the mean metrics (also written as JSON)."""
  out_dir = pathlib.Path(out_dir)
  (out_dir / "meshes").mkdir(parents=True, exist_ok=True)
  results_path = pathlib.Path(results_path or out_dir / "results.json")
  num_surface = num_surface or model.config.num_inputs
  rows, views = [], []
  with open(out_dir / "per_shape.jsonl", "w") as log:
    for i, sample in enumerate(tqdm(samples, desc="shapes", unit="shape")):
      surface = sample.surface[None, :num_surface]
      context = _encode_context(model, surface)
      logits = np.asarray(_occupancy(model, context, sample.uniform[None]))[0]
      vertices, faces = extract_mesh(occupancy_grid(model, context, resolution))
      original = _original_mesh(sample)
      reference = (mesh_io.sample_surface(mesh_io.Mesh(*original, False), mesh_points, seed)[0]
                   if len(original[1]) else sample.surface)
      row = {"shape": sample.name,
             "iou": shape_metrics.occupancy_iou(logits, sample.uniform_labels),
             "faces": int(len(faces))}
      if len(faces):
        recon = mesh_io.Mesh(vertices, faces, watertight=False)
        points, _ = mesh_io.sample_surface(recon, mesh_points, seed)
        row["chamfer"] = shape_metrics.chamfer_distance(points, reference)
        row["f_score"] = shape_metrics.f_score(points, reference, tau)
      else:  # nothing to measure against: the worst F-score, no distance
        row["chamfer"], row["f_score"] = None, 0.0
      log.write(json.dumps(row) + "\n")
      rows.append(row)
      file = out_dir / "meshes" / f"{_file_name(i, sample.name)}.obj"
      _write_obj(file, vertices, faces)
      if len(views) < 2 * num_views:
        views += [(f"original {sample.name}"[:40], *original), ("reconstruction", vertices,
                                                                 faces)]
  chamfers = [r["chamfer"] for r in rows if r["chamfer"] is not None]
  results = {"num_shapes": len(rows), "resolution": resolution, "tau": tau,
             "num_surface_points": num_surface, "mesh_points": mesh_points,
             "iou": float(np.mean([r["iou"] for r in rows])),
             "f_score": float(np.mean([r["f_score"] for r in rows])),
             "chamfer": float(np.mean(chamfers)) if chamfers else None,
             "empty_meshes": sum(r["faces"] == 0 for r in rows),
             "bytes_per_shape": float(model.bytes_per_shape), **(info or {})}
  results_path.parent.mkdir(parents=True, exist_ok=True)
  results_path.write_text(json.dumps(results, indent=2) + "\n")
  if views:
    save_mesh_views(out_dir / "meshes.png", views)
  return results


def _original_mesh(sample):
  """The normalised source mesh, or (when its file is gone) nothing to draw."""
  try:
    mesh = mesh_io.load_mesh(sample.path)
    return mesh.vertices, mesh.faces
  except (mesh_io.MeshError, OSError, TypeError):
    return np.zeros((0, 3)), np.zeros((0, 3), np.int64)


def _write_obj(path, vertices, faces):
  with open(path, "w") as f:
    f.writelines(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices)
    f.writelines(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)

"""Meshes -> what 3D tokenizers train on: surface points with normals, occupancy-labelled queries.

Meshes are read with trimesh (OBJ, PLY, GLB/GLTF, OFF, STL; a scene is merged into one mesh),
centred on their bounding box and scaled so the longest side spans [-NORMALISED_HALF_EXTENT,
+NORMALISED_HALF_EXTENT], which leaves room in [-1, 1]^3 for near-surface queries.

Occupancy comes from the generalised winding number (the solid angle the mesh subtends at a
point, over 4 pi): exactly 1 inside and 0 outside a closed, consistently oriented mesh, and a
smooth, still usable estimate for meshes with small holes or cracks, where ray parity tests
flip; a point counts as inside at |w| >= 0.5 (a mesh wound the other way gives -1). Meshes that are not watertight are kept, and the
sample records it (`watertight`) so a dataset can filter on it.
Every draw depends only on the seed given.
"""
import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

NORMALISED_HALF_EXTENT = 0.9
MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".off", ".stl")


class MeshError(ValueError):
  """A file that does not hold a usable mesh (unreadable, empty or degenerate)."""


@dataclasses.dataclass(frozen=True)
class Mesh:
  vertices: np.ndarray  # [V, 3] float64, normalised
  faces: np.ndarray  # [F, 3] int64
  watertight: bool


def load_mesh(path) -> Mesh:
  """Reads and normalises one mesh; raises MeshError naming the file and the problem."""
  import trimesh
  path = pathlib.Path(path)
  try:
    mesh = trimesh.load(path, force="mesh", process=True)
  except Exception as e:  # trimesh raises many kinds for a bad file
    raise MeshError(f"{path}: unreadable mesh ({type(e).__name__}: {e})") from e
  if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
    raise MeshError(f"{path}: holds no triangles")
  vertices = np.asarray(mesh.vertices, np.float64)
  if not np.all(np.isfinite(vertices)):
    raise MeshError(f"{path}: vertices contain NaN or Inf")
  lo, hi = vertices.min(0), vertices.max(0)
  extent = float((hi - lo).max())
  if extent <= 1e-9 or float(mesh.area) <= 1e-12:
    raise MeshError(f"{path}: degenerate mesh (extent {extent:.3g}, area {mesh.area:.3g})")
  vertices = (vertices - (lo + hi) / 2) * (2 * NORMALISED_HALF_EXTENT / extent)
  return Mesh(vertices, np.asarray(mesh.faces, np.int64), bool(mesh.is_watertight))


def sample_surface(mesh: Mesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(points [count, 3], unit normals [count, 3]) uniformly by area."""
  rng = np.random.default_rng(seed)
  tri = mesh.vertices[mesh.faces]
  cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  area = np.linalg.norm(cross, axis=-1)
  face = rng.choice(len(tri), size=count, p=area / area.sum())
  u, v = rng.random((2, count))
  flip = u + v > 1  # fold the unit square onto the triangle
  u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
  t = tri[face]
  points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
  normals = cross[face] / np.maximum(area[face], 1e-30)[:, None]
  return points.astype(np.float32), normals.astype(np.float32)


@jax.jit
def _winding_chunk(tri, queries):
  # Per coordinate [q, F] planes: XLA vectorises these, not a trailing axis of 3.
  a, b, c = ([tri[None, :, k, i] - queries[:, None, i] for i in range(3)] for k in range(3))
  norm = lambda v: jnp.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
  dot = lambda u, v: u[0] * v[0] + u[1] * v[1] + u[2] * v[2]
  bxc = (b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0])
  la, lb, lc = norm(a), norm(b), norm(c)
  denom = la * lb * lc + dot(a, b) * lc + dot(b, c) * la + dot(c, a) * lb
  return jnp.arctan2(dot(a, bxc), denom).sum(-1) / (2 * jnp.pi)


def winding_numbers(mesh: Mesh, queries, *, chunk_elements: int = 1 << 22) -> np.ndarray:
  """Generalised winding number of each query [Q, 3] (Van Oosterom-Strackee solid angles)."""
  queries = np.asarray(queries, np.float32)
  # Padded to a power of two of collapsed triangles far outside the cube (each subtends no
  # solid angle), so meshes of similar sizes share one compiled kernel.
  faces = len(mesh.faces)
  tri = np.full((int(2 ** np.ceil(np.log2(faces))), 3, 3), 8.0, np.float32)
  tri[:faces] = mesh.vertices[mesh.faces]
  step = int(2 ** np.floor(np.log2(max(1, chunk_elements // len(tri)))))  # few compiled sizes
  padded = np.zeros((-(-len(queries) // step) * step, 3), np.float32)
  padded[:len(queries)] = queries
  out = [np.asarray(_winding_chunk(jnp.asarray(tri), padded[i:i + step]))
         for i in range(0, len(padded), step)]
  return np.concatenate(out)[:len(queries)]


def occupancy(mesh: Mesh, queries) -> np.ndarray:
  """1.0 inside (|winding number| >= 0.5: either orientation), 0.0 outside: [Q] float32."""
  return (np.abs(winding_numbers(mesh, queries)) >= 0.5).astype(np.float32)


def sample_queries(mesh: Mesh, count: int, seed: int, *, near_std: float = 0.02
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(uniform points, their labels, near-surface points, their labels), count of each.

  Uniform queries fill [-1, 1]^3; near-surface ones are surface samples moved by N(0,
  near_std^2) per axis (3DShape2VecSet's ShapeNet data mixes the two kinds the same way).
  """
  rng = np.random.default_rng([seed, 1])
  uniform = rng.uniform(-1, 1, (count, 3)).astype(np.float32)
  near, _ = sample_surface(mesh, count, seed + 7919)
  near = np.clip(near + near_std * rng.standard_normal(near.shape), -1, 1).astype(np.float32)
  return uniform, occupancy(mesh, uniform), near, occupancy(mesh, near)

"""PNG views of meshes, for a person to compare originals and reconstructions.

Flat-shaded triangles (Lambert against one light) from two fixed viewpoints, drawn with
matplotlib's 3-D axes; slow for big meshes, so faces beyond `max_faces` are subsampled.
"""
import pathlib

import numpy as np

VIEWS = ((25, 35), (15, 215))  # (elevation, azimuth) in degrees
LIGHT = np.array([0.4, 0.3, 0.85]) / np.linalg.norm([0.4, 0.3, 0.85])


def _draw(ax, vertices, faces, max_faces):
  from mpl_toolkits.mplot3d.art3d import Poly3DCollection
  ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
  ax.set_box_aspect((1, 1, 1))
  ax.set_axis_off()
  if len(faces) == 0:
    ax.text(0, 0, 0, "empty", ha="center")
    return
  if len(faces) > max_faces:
    faces = faces[np.random.default_rng(0).choice(len(faces), max_faces, replace=False)]
  tri = vertices[faces]
  normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
  shade = 0.25 + 0.75 * np.abs(normal @ LIGHT)  # either winding faces the light
  colours = np.stack([0.55 * shade, 0.65 * shade, 0.85 * shade, np.ones_like(shade)], 1)
  ax.add_collection3d(Poly3DCollection(tri, facecolors=colours, edgecolors="none"))


def save_mesh_views(path, rows, *, max_faces: int = 20_000) -> str:
  """rows: [(title, vertices [V, 3], faces [F, 3]), ...]; one row per mesh, one column per view.

  The x, y, z of the zoo's shapes are drawn as matplotlib's x, z, y (y up)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"mesh views are written as PNG; got {path}")
  fig = plt.figure(figsize=(3 * len(VIEWS), 3 * len(rows)))
  for r, (title, vertices, faces) in enumerate(rows):
    v = np.asarray(vertices, np.float64)[:, [0, 2, 1]] if len(vertices) else np.zeros((0, 3))
    for c, (elev, azim) in enumerate(VIEWS):
      ax = fig.add_subplot(len(rows), len(VIEWS), r * len(VIEWS) + c + 1, projection="3d")
      _draw(ax, v, np.asarray(faces, np.int64), max_faces)
      ax.view_init(elev=elev, azim=azim)
      if c == 0:
        ax.set_title(title, fontsize=8)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return str(path)

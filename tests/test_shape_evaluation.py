"""Shape reconstruction evaluation: an exact occupancy gives IoU and F-score 1 through the
whole path (grid, marching cubes, mesh sampling, metrics); eval.py runs a 3D model; the
3DShape2VecSet model's bad inputs are named."""
import json
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh
from flax import nnx

import zoo
from zoo.data.shape_sets import ShapeSet
from zoo.evals.shape_reconstruction import evaluate_shapes, extract_mesh, grid_points

ROOT = pathlib.Path(__file__).resolve().parents[1]
HALF = np.array([0.9, 0.45, 0.3])  # a 2 x 1 x 2/3 box once normalised


class ExactBox(nnx.Module):
  """The protocol of evaluate_shapes with the true occupancy of the normalised box."""

  class config:  # pylint: disable=invalid-name
    num_inputs = 256

  bytes_per_shape = 12

  def encode(self, surface):
    return surface[:, :1]

  def decoder_context(self, tokens):
    return tokens

  def occupancy(self, context, queries):
    del context
    return 1.0 - jnp.max(jnp.abs(queries) / HALF, axis=-1)  # 0 on the box's faces


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
  root = tmp_path_factory.mktemp("boxes")
  for i in range(10):
    trimesh.creation.box(extents=(2.0, 1.0, 2 / 3)).export(root / f"box{i}.obj")
  return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
  monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))


def test_exact_occupancy_scores_perfectly(boxes, tmp_path):
  shapes = ShapeSet(f"folder:{boxes}", "test", progress=False)
  # At the official 128 cells the marched box's edges are bevelled by well under tau.
  results = evaluate_shapes(ExactBox(), shapes, out_dir=tmp_path / "eval", resolution=128)
  assert results["iou"] == pytest.approx(1.0, abs=2e-3)
  assert results["f_score"] == pytest.approx(1.0, abs=1e-3)
  assert results["chamfer"] < 0.01 and results["bytes_per_shape"] == 12
  (line,) = (tmp_path / "eval" / "per_shape.jsonl").read_text().splitlines()
  assert json.loads(line)["shape"] == "box9.obj"
  mesh = trimesh.load(tmp_path / "eval" / "meshes" / "0000_box9.obj")
  np.testing.assert_allclose(mesh.bounds, [-HALF, HALF], atol=1e-5)  # grid -> [-1, 1] mapping
  assert (tmp_path / "eval" / "meshes.png").stat().st_size > 10_000


def test_marching_cubes_of_a_sphere_and_of_nothing():
  pts = grid_points(32)
  logits = (0.5 - np.linalg.norm(pts, axis=1)).reshape(33, 33, 33)
  vertices, faces = extract_mesh(logits)
  np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 0.5, atol=0.01)
  assert len(faces) > 1000
  vertices, faces = extract_mesh(-np.ones((5, 5, 5)))
  assert vertices.shape == (0, 3) and faces.shape == (0, 3)


def test_eval_py_on_a_shape_model(boxes, tmp_path):
  out = tmp_path / "eval"
  subprocess.run([sys.executable, str(ROOT / "eval.py"), "--model=shape2vecset_tiny",
                  f"--data=folder:{boxes}", "--split=train", "--num=2", "--resolution=16",
                  "--mesh-points=2000", f"--out={out}"], check=True, cwd=ROOT,
                 capture_output=True, env={"ZOO_CACHE_DIR": str(tmp_path / "c"),
                                           "PATH": "/usr/bin:/bin"})
  results = json.loads((out / "results.json").read_text())
  assert results["num_shapes"] == 2 and results["split"] == "train"
  assert 0 <= results["iou"] <= 1 and results["bytes_per_shape"] == 4 * 16 * 4
  assert len(list((out / "meshes").glob("*.obj"))) == 2


@pytest.fixture(scope="module")
def tiny():
  return zoo.create("shape2vecset_tiny")


def test_bad_point_clouds_are_named(tiny):
  good = np.random.default_rng(0).uniform(-1, 1, (1, 128, 3)).astype(np.float32)
  with pytest.raises(ValueError, match=r"\[B, N, 3\]"):
    tiny.encode(good[..., :2])
  with pytest.raises(ValueError, match="at least 16"):
    tiny.encode(good[:, :8])
  with pytest.raises(ValueError, match="NaN"):
    tiny.encode(np.where(np.arange(128)[None, :, None] == 3, np.nan, good))
  with pytest.raises(ValueError, match="normalised"):
    tiny.encode(good * 3)
  with pytest.raises(TypeError, match="float"):
    tiny.encode(good.astype(np.int32))
  with pytest.raises(ValueError, match=r"latents must be \[B, M, 4\]"):
    tiny.decode(jnp.zeros((1, 16, 5)), good)

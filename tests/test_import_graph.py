"""Imports flow one way: no module of zoo/, models/ or pallas_kernels/ reaches itself again
through its imports, counting the ones inside functions (a lazy import hides a cycle at load
time but still ties the two modules together)."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "models", "pallas_kernels")


def _modules() -> dict[str, pathlib.Path]:
  mods = {}
  for pkg in PACKAGES:
    for path in (ROOT / pkg).rglob("*.py"):
      name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
      mods[name.removesuffix(".__init__")] = path
  return mods


def import_graph() -> dict[str, set[str]]:
  mods = _modules()
  graph = {}
  for name, path in mods.items():
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        for alias in node.names:  # `from zoo.convert import snac` names a module
          full = f"{node.module}.{alias.name}"
          deps.add(full if full in mods else node.module)
      elif isinstance(node, ast.Import):
        deps.update(alias.name for alias in node.names)
    graph[name] = {d for d in deps if d in mods and d != name}
  return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  state, cycles = {}, []

  def visit(node, path):
    state[node] = "open"
    path.append(node)
    for dep in sorted(graph[node]):
      if state.get(dep) == "open":
        cycles.append(path[path.index(dep):] + [dep])
      elif dep not in state:
        visit(dep, path)
    path.pop()
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [])
  return cycles


def test_the_checker_finds_a_cycle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert find_cycles(graph) == [["a", "b", "c", "a"]]
  assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
  graph = import_graph()
  assert len(graph) > 100 and "zoo.registry" in graph["zoo"]
  cycles = find_cycles(graph)
  assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)

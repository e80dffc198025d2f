"""The kit's import graph, read from the source with `ast` (module-level and function-level imports).

- no import cycles between the kit's modules;
- the GLUE harness (`benchmarks`) imports neither `grader`, `course_demo` nor
  `experiments` (measurements and studies that use the harness live apart); it writes
  Gradescope's files through `lms`, as the grader does;
- `reference_impl` and `lms` import nothing of the kit's other packages.
The checks are first run on a small tree with each violation, so they can fail.
"""

import ast
import graphlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("reference_impl", "grader", "benchmarks", "cluster", "course_demo", "experiments", "lms")
# package -> kit packages it must not import
FORBIDDEN = {
    "benchmarks": ("grader", "course_demo", "experiments"),
    "reference_impl": tuple(p for p in PACKAGES if p != "reference_impl"),
    "lms": tuple(p for p in PACKAGES if p != "lms"),
}


def module_name(root, path):
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_modules(root, packages):
    """{module name: source path} of every .py file under the packages."""
    return {module_name(root, path): path for package in packages
            for path in sorted((root / package).rglob("*.py"))}


def imported_names(path, module, is_package):
    """Every module name an import statement in the file names (absolute, relative ones resolved)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            names += [origin] + [f"{origin}.{alias.name}" for alias in node.names]
    return names


def import_graph(root, packages):
    """{kit module: set of kit modules it imports}."""
    modules = kit_modules(root, packages)
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(path, module, path.name == "__init__.py"):
            # the module itself, else its nearest enclosing kit module (`from pkg import function`)
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def import_cycle(graph):
    """One import cycle as a list of modules, or None."""
    # A package's __init__ is imported before its modules: that edge is not a cycle.
    edges = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return None


def forbidden_imports(graph, forbidden):
    """[(module, imported module)] that cross a forbidden package boundary."""
    return sorted((module, target) for module, targets in graph.items() for target in targets
                  if target.split(".")[0] in forbidden.get(module.split(".")[0], ()))


def write(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_checks_find_cycles_and_forbidden_imports(tmp_path):
    write(tmp_path, {
        "benchmarks/__init__.py": "",
        "benchmarks/tasks.py": "from benchmarks import hub\n",
        "benchmarks/hub.py": "def read():\n    from .tasks import Examples\n",  # a function-level, relative import
        "benchmarks/runner.py": "import grader.course\n",
        "grader/__init__.py": "",
        "grader/course.py": "def grade():\n    from reference_impl import bert\n",
        "reference_impl/__init__.py": "",
        "reference_impl/bert.py": "from benchmarks.tasks import TASKS\n",
    })
    graph = import_graph(tmp_path, ("benchmarks", "grader", "reference_impl"))
    assert sorted(import_cycle(graph)[:-1]) == ["benchmarks.hub", "benchmarks.tasks"]
    assert forbidden_imports(graph, FORBIDDEN) == [("benchmarks.runner", "grader.course"),
                                                   ("reference_impl.bert", "benchmarks.tasks")]


def test_kit_has_no_import_cycles():
    graph = import_graph(ROOT, PACKAGES)
    assert "benchmarks.tasks" in graph["benchmarks.runner"]  # the graph is read
    assert import_cycle(graph) is None


def test_harness_and_reference_models_stay_on_their_side():
    graph = import_graph(ROOT, PACKAGES)
    assert forbidden_imports(graph, FORBIDDEN) == []

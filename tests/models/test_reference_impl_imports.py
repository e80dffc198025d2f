"""`reference_impl` stands alone, and no code branches on a model family's name.

Every module of the package is parsed (not imported), so imports inside
functions count too: none may reach the kit's other packages, whose code
depends on the models, never the other way round.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OTHER_PACKAGES = ("grader", "benchmarks", "cluster", "course_demo", "assignments", "tests")


def modules(package):
    return sorted((REPO / package).rglob("*.py"))


def imported_names(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_reference_impl_imports_none_of_the_kits_other_packages():
    found = {f"{path.relative_to(REPO)}: {name}"
             for path in modules("reference_impl") for name in imported_names(path)
             if name.split(".")[0] in OTHER_PACKAGES}
    assert len(modules("reference_impl")) > 20  # the walk found the package
    assert not found, sorted(found)


def test_every_reference_impl_import_resolves_to_a_module_of_the_package():
    missing = set()
    for path in modules("reference_impl"):
        for name in imported_names(path):
            if name.split(".")[0] == "reference_impl":
                target = REPO / Path(*name.split("."))
                if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
                    missing.add(f"{path.relative_to(REPO)}: {name}")
    assert not missing, sorted(missing)


def family_comparisons(source):
    """Lines of `family == "bert"`, `family.name in ("bert", ...)` and the like: branches on a
    family's name (reading a record's fields, `family.objective == "causal_lm"`, is fine)."""
    def is_family_name(part):
        text = ast.unparse(part)
        return isinstance(part, (ast.Name, ast.Attribute)) and (
            "family" in text and (isinstance(part, ast.Name) or text.endswith(".name")))

    def is_text(part):
        return (isinstance(part, ast.Constant) and isinstance(part.value, str)) or (
            isinstance(part, (ast.Tuple, ast.List, ast.Set)) and all(map(is_text, part.elts)))

    for node in ast.walk(ast.parse(source)):
        parts = (node.left, *node.comparators) if isinstance(node, ast.Compare) else ()
        if any(map(is_family_name, parts)) and any(map(is_text, parts)):
            yield node.lineno


@pytest.mark.parametrize("package", ["reference_impl", "course_demo"])
def test_no_code_branches_on_a_family_name(package):
    found = [f"{path.relative_to(REPO)}:{line}" for path in modules(package)
             for line in family_comparisons(path.read_text())]
    assert not found, f"read reference_impl.families instead: {found}"


def test_the_family_check_finds_a_branch():
    source = "\n".join(['if family == "electra": pass', 'if family.name in ("bert", "albert"): pass',
                        "if family in FAMILIES: pass", 'if family.objective == "causal_lm": pass'])
    assert list(family_comparisons(source)) == [1, 2]

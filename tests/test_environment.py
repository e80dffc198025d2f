"""pyproject.toml and environment.yml pin the same packages at the same versions,
and the installed versions are the pinned ones."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s;]+)$")


def pins(lines):
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"not an exact pin: {line!r}"
        found[match.group(1).lower()] = match.group(3)
    return found


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return pins(project["dependencies"])


def environment_pins():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    return pins(line.strip()[2:] for line in lines[start:] if line.strip().startswith("- "))


def test_environment_yml_pins_what_pyproject_pins():
    assert environment_pins() == pyproject_pins()


def test_the_issue_named_versions_are_pinned():
    expected = {"tensorflow": "2.21", "keras": "3.15", "keras-hub": "0.32",
                "tensorflow-text": "2.21", "nbgrader": "0.9.6"}
    found = pyproject_pins()
    for name, prefix in expected.items():
        assert found[name].startswith(prefix), (name, found[name])


def test_installed_versions_are_the_pinned_ones():
    for name, pinned in pyproject_pins().items():
        assert version(name) == pinned, name


def test_the_commands_for_people_are_installed_entry_points():
    import importlib
    import subprocess
    import sys

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"lm-grader", "lm-benchmarks", "lm-course-demo"}
    for name, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    # The installed grader command answers as `python -m grader` does.
    grader = Path(sys.executable).parent / "lm-grader"
    assert grader.exists(), "reinstall the kit (`make install`): pyproject.toml's scripts changed"
    assert "autograde" in subprocess.run([grader, "--help"], capture_output=True, text=True, check=True).stdout

"""One assignment, read from its folder `assignments/<name>/`.

The folder holds everything about the assignment:

* `<name>.ipynb`: the nbgrader source notebook (solution regions, locked
  cells, graded cells calling `capture("<name>.<case>", function)`), and any
  support files beside it (data the notebook reads), released with it;
* `inputs.py`: `CASES`, case id -> a function of a numpy Generator returning
  the keyword arguments of one or more calls. The one place a case id is
  declared; released to students as `<name>_inputs.py` beside
  `grading_runtime.py`, which imports it under that name. Its optional
  `OUTCOMES` declares training outcomes: cases graded on a held-out split
  (`split`, a TSV in `heldout/`), whose `inputs` columns the function gets
  and whose `labels` column scores its predictions by `metric`, with points
  in proportion from `chance` to `full_marks_at`;
* `heldout/` (optional): the held-out splits of the training outcomes. Never
  released; only their input columns ever reach a kernel, at grading time;
* `reference.py`: `REFERENCES`, graded function -> the trusted reference
  (built on `reference_impl`), returning a tuple of arrays. Never released;
* `bugs.py`: the catalogue of known bugs (`BUGS`, graded function ->
  [(description, text in the solution, replacement)]) and alternative correct
  solutions (`CORRECT`, graded function -> {description: definition}). The
  mutation tests and the feedback's "known bug" lines both read it;
* `leaderboard.py` (optional): `LEADERBOARD`, the Gradescope leaderboard's columns, each
  computed from one graded case's outputs (`grader/gradescope/autograder.py`). Never released.

Assignments are discovered: a folder of the assignments root holding a notebook
of its own name is one. The root is `assignments/` in this repository, or
`$GRADER_ASSIGNMENTS` when set.
"""

import csv
import functools
import importlib.util
import json
import os
import re
import secrets
from dataclasses import dataclass

import nbformat
import numpy as np

from grader.runtime import grading_runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT_VARIABLE = "GRADER_ASSIGNMENTS"
STAFF_FILES = ("inputs.py", "reference.py", "bugs.py", "leaderboard.py", "heldout")
CAPTURE = re.compile(r"""\bcapture\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""")
# The metrics a training outcome may be scored by: name -> the scikit-learn function, on class ids.
OUTCOME_METRICS = {"accuracy": "accuracy_score", "f1": "f1_score", "matthews_corrcoef": "matthews_corrcoef"}
LOCAL_CHECK = re.compile(r"""\blocal_check\(\s*["']([\w.]+)["']""")


def root():
    """The folder whose subfolders are the assignments."""
    return os.path.abspath(os.environ.get(ROOT_VARIABLE) or os.path.join(REPO, "assignments"))


def names():
    """Every assignment under the root, sorted."""
    folder = root()
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the assignments folder {folder} does not exist "
                                f"(set {ROOT_VARIABLE} to a folder of assignments, or unset it)")
    return sorted(name for name in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, name, f"{name}.ipynb")))


def captures_in(source):
    """[(case id, function name)] of the `capture(...)` calls in a (trusted) cell, in order."""
    return CAPTURE.findall(source)


def numpy_outputs(outputs):
    """A reference's return value (one tensor or a tuple) as a tuple of numpy arrays."""
    from keras import ops  # only references (trusted, main process) need Keras
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return tuple(np.asarray(ops.convert_to_numpy(o)) for o in outputs)


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Assignment:
    name: str
    folder: str

    @property
    def notebook_path(self):
        return os.path.join(self.folder, f"{self.name}.ipynb")

    @property
    def released_inputs_module(self):
        """The module name `inputs.py` gets beside grading_runtime.py (what grading_runtime imports)."""
        return f"{self.name}_inputs"

    @property
    def released_inputs_name(self):
        return self.released_inputs_module + ".py"

    def _module(self, kind):
        return _load_module(os.path.join(self.folder, f"{kind}.py"), f"assignment_{self.name}_{kind}")

    @functools.cached_property
    def inputs(self):
        return self._module("inputs")

    @functools.cached_property
    def references(self):
        return self._module("reference").REFERENCES

    @functools.cached_property
    def catalogue(self):
        """(BUGS, CORRECT) from bugs.py."""
        module = self._module("bugs")
        return module.BUGS, module.CORRECT

    @functools.cached_property
    def leaderboard(self):
        """LEADERBOARD from leaderboard.py: [{"name", "case", "value", "order"?}]; [] without the file."""
        if not os.path.isfile(os.path.join(self.folder, "leaderboard.py")):
            return []
        return self._module("leaderboard").LEADERBOARD

    def notebook(self):
        return nbformat.read(self.notebook_path, as_version=4)

    @functools.cached_property
    def captured(self):
        """{case id: function}, every capture of the source notebook's graded cells."""
        cases = {}
        for cell in self.notebook().cells:
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                cases.update(captures_in(cell.source))
        return cases

    @property
    def outcomes(self):
        """OUTCOMES of inputs.py: {case id: how the training outcome is graded}."""
        return getattr(self.inputs, "OUTCOMES", {})

    @property
    def case_functions(self):
        """{case id: graded function} of the cases drawn from a seed (not the training outcomes)."""
        return {case: fn for case, fn in self.captured.items() if case not in self.outcomes}

    def heldout_split(self, case_id):
        """(inputs: {argument: [values]}, labels: array) of a training outcome's held-out split."""
        outcome = self.outcomes[case_id]
        with open(os.path.join(self.folder, "heldout", outcome["split"]), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        inputs = {argument: [row[column] for row in rows] for argument, column in outcome["inputs"].items()}
        return inputs, np.array([int(row[outcome["labels"]]) for row in rows])

    def heldout_inputs(self):
        """{"<case>.heldout.json": bytes} for each training outcome: its split's inputs (never its
        labels), put beside the notebook when grading."""
        return {case_id + grading_runtime.HELDOUT_SUFFIX: json.dumps(self.heldout_split(case_id)[0]).encode()
                for case_id in self.outcomes}

    def support_files(self):
        """What is copied into the course's source/<name>/: the notebook and its data."""
        return sorted(entry for entry in os.listdir(self.folder)
                      if entry not in STAFF_FILES and not entry.startswith((".", "__pycache__")))

    def draw_calls(self, case_id, seed):
        """The keyword arguments of each call of `case_id` under `seed`, as the kernel draws them."""
        return grading_runtime.draw_calls(case_id, seed, self.inputs.CASES)

    def repeats_public_outputs(self, case_id, seed):
        """Whether the reference's outputs for `case_id` under `seed` equal, within the grading
        tolerance, those of the public check (which every student holds in public_checks.npz):
        then replaying the public expected values would pass. Inputs need not repeat for that:
        a few discrete sizes can give the same parameter count, a sum the same loss."""
        function = self.case_functions[case_id]
        public = reference_outputs(self, case_id, function, grading_runtime.PUBLIC_SEED)
        return not grading_runtime.mismatches(public, reference_outputs(self, case_id, function, seed))

    def problems(self):
        """What is inconsistent between the notebook, inputs.py, reference.py and bugs.py."""
        problems = []
        declared = set(self.inputs.CASES) | set(self.outcomes)
        bugs, correct = self.catalogue
        used = set()
        for cell in self.notebook().cells:
            if cell.cell_type != "code":
                continue
            graded = cell.metadata.get("nbgrader", {}).get("grade")
            ids = [case for case, _ in captures_in(cell.source)] + LOCAL_CHECK.findall(cell.source)
            for case_id in ids:
                if case_id not in declared:
                    problems.append(f"{self.name}.ipynb uses case {case_id!r}, not declared in inputs.py CASES")
            if not graded and captures_in(cell.source):
                problems.append(f"{self.name}.ipynb calls capture() in a cell that is not graded")
            used.update(ids)
        for case_id in sorted(declared - used):
            problems.append(f"inputs.py declares case {case_id!r}, which no cell of {self.name}.ipynb uses")
        for case_id in sorted(declared):
            if not case_id.startswith(self.name + "."):
                problems.append(f"case {case_id!r} must be named {self.name}.<case>")
        for case_id, outcome in self.outcomes.items():
            try:
                inputs, labels = self.heldout_split(case_id)
            except (OSError, KeyError, ValueError) as error:
                problems.append(f"training outcome {case_id!r}: its held-out split heldout/{outcome.get('split')} "
                                f"is unreadable or lacks a declared column ({type(error).__name__}: {error})")
                continue
            if not len(labels) or any(len(values) != len(labels) for values in inputs.values()):
                problems.append(f"training outcome {case_id!r}: heldout/{outcome['split']} has no rows")
            if outcome.get("metric") not in OUTCOME_METRICS:
                problems.append(f"training outcome {case_id!r}: metric {outcome.get('metric')!r} is not one of "
                                f"{', '.join(OUTCOME_METRICS)}")
        functions = set(self.case_functions.values())
        for table, what in ((self.references, "reference.py REFERENCES"), (bugs, "bugs.py BUGS"),
                            (correct, "bugs.py CORRECT")):
            for function in sorted(functions - set(table)):
                problems.append(f"{what} has no entry for the graded function {function}")
            for function in sorted(set(table) - functions):
                problems.append(f"{what} names {function}, which no graded cell captures")
        return problems

    def validate(self):
        problems = self.problems()
        if problems:
            raise ValueError(f"assignment {self.name} ({self.folder}) is inconsistent:\n  "
                             + "\n  ".join(problems))


@functools.cache
def _load(name, folder):
    if not os.path.isfile(os.path.join(folder, f"{name}.ipynb")):
        raise KeyError(f"no assignment {name!r}: {folder} has no {name}.ipynb "
                       f"(assignments: {', '.join(names()) or 'none'})")
    return Assignment(name, folder)


def load(name):
    """The assignment `name` under the current root."""
    return _load(name, os.path.join(root(), name))


def of_case(case_id):
    """The assignment a case id belongs to ("<assignment>.<case>")."""
    return load(case_id.split(".", 1)[0])


@functools.lru_cache(maxsize=4096)
def reference_outputs(assignment, case_id, function, seed):
    """The reference's outputs on the case's secret inputs under `seed` (kept: every
    notebook graded with that seed, and every catalogued bug compared, reuses them)."""
    return outputs_of(assignment.references[function], assignment.draw_calls(case_id, seed))


def outputs_of(fn, calls):
    """{"call{i}_output{j}": array} of `fn` (a reference function, or a reference layer class,
    whose gradients are recorded too) on each call's arguments, passed as the notebook passes them."""
    arrays = {}
    for i, kwargs in enumerate(calls):
        for name, array in grading_runtime.call_outputs(fn, grading_runtime.notebook_arguments(kwargs)).items():
            arrays[f"call{i}_{name}"] = array
    return arrays


def secret_seed(case_ids, attempts=100):
    """A fresh secret seed under which no graded case among `case_ids` expects the outputs of
    its public check, so replaying the public expected values can never pass a graded case.
    The reference outputs it computes are kept for the verdicts (`reference_outputs`)."""
    for _ in range(attempts):
        seed = secrets.randbits(62)
        if not any(of_case(case_id).repeats_public_outputs(case_id, seed) for case_id in case_ids
                   if case_id in of_case(case_id).case_functions):
            return seed
    raise RuntimeError(f"{attempts} secret seeds in a row gave a public check's expected outputs for one of "
                       f"{', '.join(case_ids)}: draw that case's inputs from a larger space (inputs.py)")

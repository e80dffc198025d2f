"""What the grader knows about each assignment: references and known bugs per case.

Each module here (one per assignment) defines CASES: case id -> Case. They are
discovered, so adding an assignment needs no edit of this file.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field

import numpy as np
from keras import ops


@dataclass(frozen=True)
class Case:
    """One graded case: the reference and the known bugs, each mapping call kwargs to outputs."""

    function: str
    reference: callable
    known_bugs: dict = field(default_factory=dict)


def as_numpy_outputs(outputs):
    """A reference's return value (one tensor or a tuple) as a tuple of numpy arrays."""
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return tuple(np.asarray(ops.convert_to_numpy(o)) for o in outputs)


def _all_cases():
    cases = {}
    for module in pkgutil.iter_modules(__path__):
        cases.update(importlib.import_module(f"{__name__}.{module.name}").CASES)
    return cases


CASES = _all_cases()

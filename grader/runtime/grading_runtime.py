"""Capture and local checks for graded notebooks.

This one file is shipped with every released assignment and is the only part
of the grader a student's kernel ever sees. It holds no expected outputs for
graded inputs: it only draws inputs and records what the student's function
returns. Verdicts are computed later, outside the sandbox.

* During grading (GRADER_SEED and GRADER_CAPTURE_DIR set), `capture` draws
  fresh inputs from the secret seed, calls the student's function and writes
  the outputs to `<case>.npz`.
* Anywhere else, `capture` and `local_check` run the public check: the same
  kind of inputs drawn from a public seed, compared with the public expected
  values in `public_checks.npz` next to the notebook (well under a second).
"""

import importlib
import os
import traceback
import zlib

import numpy as np

PUBLIC_SEED = 20240601
PUBLIC_CHECKS_FILE = "public_checks.npz"
RTOL, ATOL = 1e-4, 1e-5


def rng(seed, case_id):
    """A generator of its own per case, so cases never share draws."""
    return np.random.default_rng([int(seed), zlib.crc32(case_id.encode())])


# --------------------------------------------------------------------------
# Cases: how each graded function is called. Case "<assignment>.<name>" is
# drawn by <assignment>_inputs.CASES[case id], a function of a numpy
# Generator returning the keyword arguments of one or more calls. The inputs
# module ships next to this file in the released assignment; the grader,
# which keeps it in the assignment's folder, passes its CASES in.
# --------------------------------------------------------------------------


def draw_calls(case_id, seed, cases=None):
    """The keyword arguments of each call for `case_id` under `seed`."""
    if cases is None:
        assignment = case_id.split(".", 1)[0]
        try:
            cases = importlib.import_module(f"{assignment}_inputs").CASES
        except ModuleNotFoundError:
            raise KeyError(f"unknown graded case {case_id!r}: no {assignment}_inputs.py beside "
                           "grading_runtime.py") from None
    if case_id not in cases:
        raise KeyError(f"unknown graded case {case_id!r}")
    return cases[case_id](rng(seed, case_id))


# --------------------------------------------------------------------------
# Running the student's function and recording plain numeric arrays.
# --------------------------------------------------------------------------


def _as_plain_array(value):
    """A numeric numpy array, or a TypeError naming what came back instead."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"expected a numeric tensor but got {type(value).__name__} (dtype {array.dtype}); "
            "return keras/numpy tensors, not Python objects"
        )
    return np.array(array, copy=True)


def call_case(case_id, fn, seed, cases=None):
    """Call `fn` on each drawn input; returns {"call{i}_output{j}": array}."""
    arrays = {}
    for i, kwargs in enumerate(draw_calls(case_id, seed, cases)):
        result = fn(**{k: np.array(v, copy=True) for k, v in kwargs.items()})
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        for j, output in enumerate(outputs):
            arrays[f"call{i}_output{j}"] = _as_plain_array(output)
    return arrays


def error_report(error):
    """What the grader is told about an exception: its type and message, at most 2000 characters."""
    return "".join(traceback.format_exception_only(type(error), error))[-2000:]


def capture(case_id, fn):
    """Record `fn`'s outputs on secret inputs (grading) or run the public check."""
    capture_dir = os.environ.get("GRADER_CAPTURE_DIR")
    seed = os.environ.get("GRADER_SEED")
    if not (capture_dir and seed):
        local_check(case_id, fn)
        return
    base = os.path.join(capture_dir, case_id)
    try:
        arrays = call_case(case_id, fn, int(seed))
    except Exception as error:  # reported to the student through the grader's feedback
        with open(base + ".error.txt", "w") as f:
            f.write(error_report(error))
        raise
    np.savez(base + ".npz", **arrays)
    print(f"{case_id}: outputs recorded for grading.")


def local_check(case_id, fn, checks_file=PUBLIC_CHECKS_FILE):
    """Compare `fn` with the public expected values; raises AssertionError if they differ."""
    with np.load(checks_file, allow_pickle=False) as expected:
        wanted = {k.split("/", 1)[1]: expected[k] for k in expected.files if k.startswith(case_id + "/")}
    if not wanted:
        raise KeyError(f"{checks_file} has no public check for {case_id!r}")
    got = call_case(case_id, fn, PUBLIC_SEED)
    for name, want in sorted(wanted.items()):
        if name not in got:
            raise AssertionError(f"{case_id}: {name} missing (did the function return enough values?)")
        if got[name].shape != want.shape:
            raise AssertionError(f"{case_id}: {name} has shape {got[name].shape}, expected {want.shape}")
        if want.dtype == bool:
            ok = np.array_equal(got[name].astype(bool), want)
        else:
            ok = np.allclose(got[name], want, rtol=RTOL, atol=ATOL)
        if not ok:
            raise AssertionError(f"{case_id}: {name} differs from the expected values")
    print(f"{case_id}: public check passed.")

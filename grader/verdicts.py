"""Trusted verdicts: load a sandbox's captures and compare them with the reference.

Runs in the grader's own process. Captures are untrusted files: they are
size-checked, loaded with allow_pickle=False, and validated name by name,
shape by shape and dtype by dtype before any value is compared. Outputs that
miss the reference are compared with those of the assignment's catalogued bugs
(its solution with each bug put in, run on the same secret inputs), so the
feedback can name the mistake.
"""

import functools
import os
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

from grader import assignment as assignments, mutation, sandbox
from grader.runtime import grading_runtime
from grader.sandbox import open_untrusted

RTOL, ATOL = grading_runtime.RTOL, grading_runtime.ATOL


@dataclass
class CaseVerdict:
    case_id: str
    passed: bool
    message: str


@dataclass
class CellVerdict:
    grade_id: str
    points: float
    score: float
    cases: list

    def to_dict(self):
        return asdict(self)


def cases_in(source):
    """Case ids a (trusted) test cell captures, in order."""
    return [case_id for case_id, _ in assignments.captures_in(source)]


def load_capture(path):
    """{name: array} from an untrusted .npz, or raise ValueError saying what is wrong."""
    try:
        with open_untrusted(path) as f:
            too_large = ValueError(f"larger than {sandbox.MAX_CAPTURE_BYTES // 2**20} MiB")
            if os.fstat(f.fileno()).st_size > sandbox.MAX_CAPTURE_BYTES:
                raise too_large
            try:
                members = zipfile.ZipFile(f).infolist()
            except zipfile.BadZipFile:
                raise ValueError("not an .npz archive") from None
            if sum(m.file_size for m in members) > sandbox.MAX_CAPTURE_BYTES:
                raise too_large
            f.seek(0)
            with np.load(f, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
    except ValueError as error:
        raise ValueError(f"capture rejected ({error}); only plain numeric arrays are accepted") from None
    except Exception as error:
        raise ValueError(f"capture unreadable ({type(error).__name__}); "
                         "only .npz files written by capture() are accepted") from None


@functools.lru_cache(maxsize=4096)
def reference_outputs(assignment, case_id, function, seed):
    """The reference's outputs on the case's secret inputs under `seed` (kept: every
    notebook graded with that seed, and every catalogued bug compared, reuses them)."""
    return outputs_of(assignment.references[function], assignment.draw_calls(case_id, seed))


def outputs_of(fn, calls):
    """{"call{i}_output{j}": array} of `fn` (a reference) on each call's arguments, passed as
    the notebook passes them."""
    arrays = {}
    for i, kwargs in enumerate(calls):
        for j, output in enumerate(fn(**grading_runtime.notebook_arguments(kwargs))):
            arrays[f"call{i}_output{j}"] = np.asarray(output)
    return arrays


def known_bugs(assignment, case_id, function, seed, got=None, raised=None):
    """Descriptions of the catalogued bugs of `function` whose mutated solution gives exactly
    the outputs `got`, or raises exactly the error `raised`, on the same inputs."""
    named = []
    for index, (description, _, _) in enumerate(assignment.catalogue[0].get(function, ())):
        outputs, error = mutation.bug_outputs(assignment, case_id, function, seed, index)
        if (outputs is not None and got is not None and not grading_runtime.mismatches(got, outputs)) or \
                (error is not None and error.strip() == raised):
            named.append(description)
    return named


def judge_case(case_id, capture_dir, seed, function=None):
    """Verdict for one case from the capture the sandbox wrote.

    `function` is the graded function the (trusted) test cell captures; by
    default, the one the assignment's source notebook captures for `case_id`.
    """
    assignment = assignments.of_case(case_id)
    function = function or assignment.case_functions[case_id]
    path = os.path.join(capture_dir, case_id + ".npz")
    if not os.path.lexists(path):
        error_path = os.path.join(capture_dir, case_id + ".error.txt")
        if os.path.lexists(error_path):
            try:
                with open_untrusted(error_path) as f:
                    raised = f.read(2000).decode(errors="replace").strip()
            except (OSError, ValueError):
                raised = "(an error report the grader could not read)"
            message = f"{function} raised: {raised}"
            named = known_bugs(assignment, case_id, function, seed, raised=raised)
            if named:
                message = f"{function}: known bug: {'; or '.join(named)} ({message})"
            return CaseVerdict(case_id, False, message)
        return CaseVerdict(case_id, False, f"no outputs of {function} were recorded "
                           "(the test cell did not run to completion, or the kernel stopped before it)")
    try:
        got = load_capture(path)
    except ValueError as error:
        return CaseVerdict(case_id, False, str(error))
    want = reference_outputs(assignment, case_id, function, seed)
    mismatches = grading_runtime.mismatches(got, want, assignment.draw_calls(case_id, seed))
    if not mismatches:
        return CaseVerdict(case_id, True, f"{function}: correct (rtol {RTOL:g}, atol {ATOL:g})")
    named = known_bugs(assignment, case_id, function, seed, got)
    if named:
        return CaseVerdict(case_id, False, f"{function}: known bug: " + "; or ".join(named))
    return CaseVerdict(case_id, False, f"{function}: " + "; ".join(mismatches[:3]))


def judge_cell(grade_id, points, source, capture_dir, seed):
    """All-or-nothing per graded cell: every case the cell captures must pass."""
    verdicts = [judge_case(case_id, capture_dir, seed, function)
                for case_id, function in assignments.captures_in(source)]
    passed = bool(verdicts) and all(v.passed for v in verdicts)
    return CellVerdict(grade_id, float(points), float(points) if passed else 0.0,
                       [asdict(v) for v in verdicts])

"""Trusted verdicts: load a sandbox's captures and compare them with the reference.

Runs in the grader's own process. Captures are untrusted files: they are
size-checked, loaded with allow_pickle=False, and validated name by name,
shape by shape and dtype by dtype before any value is compared. Outputs that
miss the reference are compared with those of the assignment's catalogued bugs
(its solution with each bug put in, run on the same secret inputs), so the
feedback can name the mistake.
"""

import math
import os
import struct
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
    credit: float = None  # the share of the points earned: 1 or 0, or between for a training outcome

    def __post_init__(self):
        if self.credit is None:
            self.credit = 1.0 if self.passed else 0.0


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


# An .npz ends with the zip "end of central directory" record: signature,
# disk numbers, entry counts, the central directory's size and offset, and a
# comment of up to 64 KiB.
END_OF_DIRECTORY = struct.Struct("<4s4H2LH")
END_OF_DIRECTORY_SIGNATURE = b"PK\x05\x06"
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _zip_members(f, size):
    """The archive's members, after checking the member count and the central
    directory's size from the end record, before the directory is parsed."""
    tail_size = min(size, END_OF_DIRECTORY.size + 2**16)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(END_OF_DIRECTORY_SIGNATURE)
    if at < 0 or len(tail) - at < END_OF_DIRECTORY.size:
        raise ValueError("not an .npz archive")
    *_, entries, directory_bytes, _, _ = END_OF_DIRECTORY.unpack_from(tail, at)
    if entries > sandbox.MAX_CAPTURE_MEMBERS or directory_bytes > sandbox.MAX_CAPTURE_MEMBERS * 1024:
        raise ValueError(f"more than {sandbox.MAX_CAPTURE_MEMBERS} arrays")
    f.seek(0)
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        raise ValueError("not an .npz archive") from None
    members = archive.infolist()
    if len(members) > sandbox.MAX_CAPTURE_MEMBERS:
        raise ValueError(f"more than {sandbox.MAX_CAPTURE_MEMBERS} arrays")
    # zipfile stops each member at its declared size, so the declared total bounds what is read.
    if sum(m.file_size for m in members) > sandbox.MAX_CAPTURE_BYTES:
        raise ValueError(f"larger than {sandbox.MAX_CAPTURE_BYTES // 2**20} MiB")
    for member in members:
        if not member.filename.endswith(".npy") or "/" in member.filename or member.is_dir():
            raise ValueError(f"member {member.filename[:60]!r} is not an array (.npy)")
    return archive, members


def _read_npy(member_file, member):
    """One plain numeric array from an .npy member: its header is checked
    against the member's declared size before anything is allocated."""
    version = np.lib.format.read_magic(member_file)
    if version not in NPY_HEADERS:
        raise ValueError(f"{member.filename[:60]!r} has an unsupported .npy version {version}")
    shape, fortran_order, dtype = NPY_HEADERS[version](member_file)
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise ValueError(f"{member.filename[:60]!r} holds {dtype}, not plain numbers")
    count = math.prod(shape)
    if count * dtype.itemsize != member.file_size - member_file.tell():
        raise ValueError(f"{member.filename[:60]!r} declares a shape its data does not fill")
    data = member_file.read(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran_order else "C")


def load_capture(path):
    """{name: array} from an untrusted .npz, or raise ValueError saying what is wrong.

    Nothing is trusted before it is checked: the file's size, then the zip's
    member count and central directory size (read from its end record, before
    the directory is parsed), then each member's name (.npy only) and declared
    size, then each array's header against that size (object, structured and
    string dtypes refused) before its data is read.
    """
    try:
        with open_untrusted(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > sandbox.MAX_CAPTURE_BYTES:
                raise ValueError(f"larger than {sandbox.MAX_CAPTURE_BYTES // 2**20} MiB")
            archive, members = _zip_members(f, size)
            arrays = {}
            for member in members:
                with archive.open(member) as member_file:
                    arrays[member.filename[:-len(".npy")]] = _read_npy(member_file, member)
            return arrays
    except ValueError as error:
        raise ValueError(f"capture rejected ({error}); only plain numeric arrays are accepted") from None
    except Exception as error:
        raise ValueError(f"capture unreadable ({type(error).__name__}); "
                         "only .npz files written by capture() are accepted") from None


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
    function = function or assignment.captured[case_id]
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
    if case_id in assignment.outcomes:
        return judge_outcome(assignment, case_id, function, got)
    want = assignments.reference_outputs(assignment, case_id, function, seed)
    mismatches = grading_runtime.mismatches(got, want, assignment.draw_calls(case_id, seed))
    if not mismatches:
        return CaseVerdict(case_id, True, f"{function}: correct (rtol {RTOL:g}, atol {ATOL:g})")
    named = known_bugs(assignment, case_id, function, seed, got)
    if named:
        return CaseVerdict(case_id, False, f"{function}: known bug: " + "; or ".join(named))
    return CaseVerdict(case_id, False, f"{function}: " + "; ".join(mismatches[:3]))


def judge_outcome(assignment, case_id, function, got):
    """A training outcome: the predictions scored against the held-out labels, with credit in
    proportion between chance and the score that earns full marks."""
    from sklearn import metrics  # the official implementations; this process only

    outcome = assignment.outcomes[case_id]
    _, labels = assignment.heldout_split(case_id)
    predictions = got.get("call0_output0")
    if predictions is None or predictions.shape != labels.shape or predictions.dtype.kind not in "biu":
        shape = "nothing" if predictions is None else f"shape {predictions.shape}, dtype {predictions.dtype}"
        return CaseVerdict(case_id, False, f"{function}: expected one class id per held-out example "
                           f"(integers, shape {labels.shape}), got {shape}")
    score = float(getattr(metrics, assignments.OUTCOME_METRICS[outcome["metric"]])(labels, predictions))
    credit = min(1.0, max(0.0, (score - outcome["chance"]) / (outcome["full_marks_at"] - outcome["chance"])))
    return CaseVerdict(case_id, credit == 1.0, f"{function}: {outcome['metric']} {score:.3f} on {len(labels)} "
                       f"held-out examples, {credit:.0%} of the points (graded by "
                       f"{grading_runtime.outcome_terms(outcome)})", credit)


def judge_cell(grade_id, points, source, capture_dir, seed):
    """A graded cell earns its points when every case it captures passes (a training outcome's
    cell, the share of them its score earns)."""
    verdicts = [judge_case(case_id, capture_dir, seed, function)
                for case_id, function in assignments.captures_in(source)]
    credit = min((v.credit for v in verdicts), default=0.0)
    return CellVerdict(grade_id, float(points), round(float(points) * credit, 2), [asdict(v) for v in verdicts])

"""Verdicts in the grader's own process: references, known bugs, hostile captures (no sandbox)."""

import os

import numpy as np
import pytest

from grader import assignment, course, mutation, verdicts
from grader.runtime import grading_runtime

SEED = 987654321
ATTENTION = assignment.load("attention")
BUGS, _ = ATTENTION.catalogue


def outputs(case_id, fn, seed=SEED):
    return grading_runtime.call_case(case_id, fn, seed, ATTENTION.inputs.CASES)


def capture(tmp_path, case_id, fn):
    np.savez(tmp_path / f"{case_id}.npz", **outputs(case_id, fn))
    return verdicts.judge_case(case_id, str(tmp_path), SEED)


def catalogued(function, description):
    """`function` of the source notebook's solution with the catalogued bug `description` put in."""
    index = [d for d, _, _ in BUGS[function]].index(description)
    return mutation.mutant(ATTENTION, function, index)[function]


def sdpa_loop(query, key, value, mask=None):
    """A correct attention written another way: a loop over batch and heads."""
    b, h, q_len, d = query.shape
    mask = np.broadcast_to(True if mask is None else mask, (b, h, q_len, key.shape[2]))
    outputs, weights = np.zeros_like(query), np.zeros((b, h, q_len, key.shape[2]), "float32")
    for i in range(b):
        for j in range(h):
            scores = np.where(mask[i, j], query[i, j] @ key[i, j].T / np.sqrt(d), -np.inf)
            w = np.exp(scores - scores.max(-1, keepdims=True))
            weights[i, j] = w / w.sum(-1, keepdims=True)
            outputs[i, j] = weights[i, j] @ value[i, j]
    return outputs, weights


@pytest.mark.parametrize("case_id", ["attention.no_mask", "attention.padding_mask", "attention.causal"])
def test_alternative_correct_attention_passes(tmp_path, case_id):
    verdict = capture(tmp_path, case_id, sdpa_loop)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("case_id,bug", [
    (case_id, bug) for case_id in ("attention.padding_mask", "attention.causal_mask",
                                   "attention.split_heads", "attention.merge_heads")
    for bug, _, _ in BUGS[ATTENTION.case_functions[case_id]]])
def test_each_catalogued_bug_fails_and_is_named(tmp_path, case_id, bug):
    function = ATTENTION.case_functions[case_id]
    verdict = capture(tmp_path, case_id, catalogued(function, bug))
    assert not verdict.passed
    assert "known bug: " in verdict.message and bug in verdict.message, verdict.message


def test_a_known_bug_is_named_only_when_the_outputs_match_it(tmp_path):
    def almost_off_by_one(query_length, key_length, offset=0):
        mask = catalogued("causal_attention_mask",
                          "causal mask off by one: a query cannot see its own position (j < i)")(
            query_length, key_length, offset)
        mask = np.array(mask)
        mask[0, 0] = True  # the first row differs from the bug's
        return mask
    verdict = capture(tmp_path, "attention.causal_mask", almost_off_by_one)
    assert not verdict.passed and "known bug" not in verdict.message, verdict.message


def test_unknown_error_reports_where_and_how_much(tmp_path):
    def off(query, key, value, mask=None):
        outputs, weights = sdpa_loop(query, key, value, mask)
        outputs[0, 0, 0, 0] += 0.5
        return outputs, weights
    verdict = capture(tmp_path, "attention.no_mask", off)
    assert not verdict.passed
    assert "1 of" in verdict.message and "max error 0.5" in verdict.message and "(0, 0, 0, 0)" in verdict.message


def test_wrong_shape_nan_and_missing_output(tmp_path):
    assert "shape" in capture(tmp_path, "attention.no_mask", lambda query, key, value, mask=None:
                              (query[..., :1], query)).message
    assert "non-finite" in capture(tmp_path, "attention.no_mask", lambda query, key, value, mask=None:
                                   tuple(np.full_like(o, np.nan) for o in sdpa_loop(query, key, value))).message
    assert "missing" in capture(tmp_path, "attention.no_mask", lambda query, key, value, mask=None:
                                sdpa_loop(query, key, value)[0]).message


def test_pickled_and_object_captures_are_rejected(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    os.replace(tmp_path / "x.npy", tmp_path / "attention.no_mask.npz")
    assert "rejected" in verdicts.judge_case("attention.no_mask", str(tmp_path), SEED).message
    np.savez(tmp_path / "attention.split_heads.npz", call0_output0=np.array([object()], dtype=object))
    assert "rejected" in verdicts.judge_case("attention.split_heads", str(tmp_path), SEED).message


def test_always_equal_object_cannot_be_captured():
    class Equal:
        def __eq__(self, other):
            return True
    with pytest.raises(TypeError, match="expected a numeric tensor"):
        outputs("attention.split_heads", lambda x, num_heads: Equal())


def test_public_checks_cover_every_graded_call_and_accept_a_correct_solution(tmp_path):
    course.write_public_checks(str(tmp_path), course.assignment_cases(ATTENTION.folder))
    checks = str(tmp_path / grading_runtime.PUBLIC_CHECKS_FILE)
    with np.load(checks) as public:
        # 4 + 2 + 4 + 2 + 2 + 2 outputs over the six function cases; the layer: 2 calls x (an output,
        # the gradient with respect to x, 8 weight gradients)
        assert len(public.files) == 16 + 20
    offset_ignored = catalogued("causal_attention_mask", "offset ignored (breaks cached decoding)")
    with mutation.grading_environment(ATTENTION):  # attention_inputs importable, as in a student's folder
        for case_id in ("attention.no_mask", "attention.padding_mask", "attention.causal"):
            grading_runtime.local_check(case_id, sdpa_loop, checks)
        with pytest.raises(AssertionError, match="differs"):
            grading_runtime.local_check("attention.causal_mask", offset_ignored, checks)


def test_symlinked_captures_and_error_reports_are_not_followed(tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("SECRET-GRADEBOOK")
    captures = tmp_path / "captures"
    captures.mkdir()
    os.symlink(secret, captures / "attention.no_mask.error.txt")
    verdict = verdicts.judge_case("attention.no_mask", str(captures), SEED)
    assert "SECRET" not in verdict.message and not verdict.passed
    np.savez(tmp_path / "real.npz", **outputs("attention.split_heads", ATTENTION.references["split_heads"]))
    os.symlink(tmp_path / "real.npz", captures / "attention.split_heads.npz")
    verdict = verdicts.judge_case("attention.split_heads", str(captures), SEED)
    assert not verdict.passed and "unreadable" in verdict.message


def test_zip_bomb_capture_is_rejected(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "attention.no_mask.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("call0_output0.npy", b"\0" * (80 * 2**20))
    verdict = verdicts.judge_case("attention.no_mask", str(tmp_path), SEED)
    assert not verdict.passed and "larger than 64 MiB" in verdict.message

"""Capture rules and feedback: arguments arrive as the notebook passes them, changed inputs and
wrong dtypes are caught and named, and a mismatch says what differs and what it looks like.

Graded in this process (no sandbox) through grading_runtime.capture and the verdicts; the
same rules hold for the local public check. The wrong outputs of the hint tests are
catalogued bugs' real outputs (the notebook's solution with the bug put in).
"""

import numpy as np
import pytest
import keras
from keras import ops

from grader import assignment, course, mutation, verdicts
from grader.runtime import grading_runtime

SEED = 24681357


def graded(tmp_path, case_id, fn):
    """The verdict of `fn` captured on `case_id` under SEED, as the grader gives it."""
    a = assignment.of_case(case_id)
    with mutation.grading_environment(a, str(tmp_path), SEED):
        try:
            grading_runtime.capture(case_id, fn)
        except Exception:  # recorded in <case>.error.txt, as in the sandbox
            pass
    return verdicts.judge_case(case_id, str(tmp_path), SEED)


def local(tmp_path, case_id, fn):
    """The local public check of `fn` (raises AssertionError when it differs)."""
    a = assignment.of_case(case_id)
    course.write_public_checks(str(tmp_path), [case_id])
    with mutation.grading_environment(a):
        grading_runtime.local_check(case_id, fn, str(tmp_path / grading_runtime.PUBLIC_CHECKS_FILE))


def reference(case_id):
    a = assignment.of_case(case_id)
    return a.references[a.case_functions[case_id]]


def bug(case_id, description):
    """The source solution's function with the catalogued bug `description` put in."""
    a = assignment.of_case(case_id)
    function = a.case_functions[case_id]
    index = [d for d, _, _ in a.catalogue[0][function]].index(description)
    return mutation.mutant(a, function, index)[function]


def test_a_scalar_argument_arrives_as_a_python_number(tmp_path):
    seen = []

    def split_heads(x, num_heads):  # ops.split needs a Python int for the number of pieces
        seen.append(type(num_heads))
        return ops.stack(ops.split(x, num_heads, axis=-1), axis=1)

    assert graded(tmp_path, "attention.split_heads", split_heads).passed
    local(tmp_path, "attention.split_heads", split_heads)
    assert seen and set(seen) == {int}


def test_array_arguments_are_fresh_copies():
    kwargs = assignment.load("attention").draw_calls("attention.no_mask", SEED)[0]
    arguments = grading_runtime.notebook_arguments(kwargs)
    assert all(arguments[k] is not kwargs[k] and np.array_equal(arguments[k], kwargs[k]) for k in kwargs)


def test_an_input_changed_in_place_is_caught_and_named(tmp_path):
    def masked_lm_loss(logits, labels, weights):
        loss = reference("bert.masked_lm_loss")(logits, labels, weights)[0]
        weights[:] = 0  # right result, but the caller's weights are gone
        return loss

    verdict = graded(tmp_path, "bert.masked_lm_loss", masked_lm_loss)
    assert not verdict.passed
    assert "changed its input `weights` in place" in verdict.message, verdict.message
    with pytest.raises(AssertionError, match="changed its input `weights` in place"):
        local(tmp_path, "bert.masked_lm_loss", masked_lm_loss)


@pytest.mark.parametrize("output,wrong_dtype,expected", [
    (1, "float32", "expected integers"),   # float backward target ids
    (3, "int32", "expected floating point"),  # int backward loss weights
])
def test_a_wrong_dtype_is_caught_and_named(tmp_path, output, wrong_dtype, expected):
    def language_model_targets(word_ids):
        outputs = list(reference("elmo.language_model_targets")(word_ids))
        outputs[output] = outputs[output].astype(wrong_dtype)  # the right values
        return tuple(outputs)

    verdict = graded(tmp_path, "elmo.language_model_targets", language_model_targets)
    assert not verdict.passed
    assert f"output{output}: dtype {wrong_dtype}, {expected}" in verdict.message, verdict.message
    with pytest.raises(AssertionError, match=expected):
        local(tmp_path, "elmo.language_model_targets", language_model_targets)


def test_a_scalar_mismatch_shows_expected_and_actual(tmp_path):
    def masked_lm_loss(logits, labels, weights):
        return reference("bert.masked_lm_loss")(logits, labels, weights)[0] + 0.25

    verdict = graded(tmp_path, "bert.masked_lm_loss", masked_lm_loss)
    a = assignment.load("bert")
    want = float(assignment.reference_outputs(a, "bert.masked_lm_loss", "masked_lm_loss", SEED)["call0_output0"])
    assert not verdict.passed
    assert f"expected {want:.5f}".rstrip("0") in verdict.message, verdict.message
    assert f"got {want + 0.25:.5f}".rstrip("0") in verdict.message, verdict.message


def difference(case_id, fn, output=0, call=0):
    """The grader's words for output `output` of call `call` of `fn` against the reference."""
    a = assignment.of_case(case_id)
    calls = a.draw_calls(case_id, SEED)
    got = grading_runtime.call_case(case_id, fn, SEED, a.inputs.CASES)
    want = assignment.outputs_of(reference(case_id), calls)
    return "; ".join(m for m in grading_runtime.mismatches(got, want, calls)
                     if m.startswith(f"call{call}_output{output}:"))


def test_hint_constant_factor():
    message = difference("after_bert.rtd_loss", bug("after_bert.rtd_loss", "sum over real tokens instead of the mean"))
    assert "Hint: off by a constant factor" in message and "expected" in message and "got" in message, message


def test_hint_transposed():
    message = difference("attention.split_heads", bug("attention.split_heads", "transpose to [B, h, d, T]"))
    assert "looks transposed: axes 2 and 3 swapped" in message, message


def test_hint_shifted_by_one():
    message = difference("gpt.next_token_shift", bug(
        "gpt.next_token_shift", "targets not shifted: each position is asked for its own token"), output=2)
    assert "Hint: shifted by one position along axis 1" in message, message
    message = difference("attention.causal_mask", bug(
        "attention.causal_mask", "causal mask off by one: a query cannot see its own position (j < i)"))
    assert "Hint: shifted by one position" in message, message


def test_hint_differs_only_at_padding():
    message = difference("gpt.next_token_shift", bug("gpt.next_token_shift", "padding targets weighted into the loss"),
                         output=3)
    assert "Hint: differs only at padding positions" in message, message


def test_hint_softmax():
    missing = difference("bert.classification_head", bug("bert.classification_head", "logits returned, no softmax"))
    assert "Hint: the softmax is missing" in missing, missing
    extra = difference("gpt.last_token_logits", bug(
        "gpt.last_token_logits", "probabilities (softmax) returned instead of logits"))
    assert "Hint: a softmax too many" in extra, extra


def test_first_difference_shows_its_inputs():
    message = difference("gpt.next_token_shift", bug(
        "gpt.next_token_shift", "targets not shifted: each position is asked for its own token"), output=2)
    assert "first at index (0, 0)" in message and "(inputs there: token_ids[0] = [" in message, message


def solution(case_id):
    """The source notebook's definition of the function or layer `case_id` captures."""
    a = assignment.of_case(case_id)
    return mutation.run_definitions(a, mutation.definitions(a.notebook()))[a.case_functions[case_id]]


def test_a_layer_gets_the_graders_weights_and_its_gradients_are_graded(tmp_path):
    layer = solution("attention.layer")
    for folder in ("solution", "numpy"):
        (tmp_path / folder).mkdir()
    assert graded(tmp_path / "solution", "attention.layer", layer).passed
    local(tmp_path, "attention.layer", layer)
    # Right outputs, but the query projection detours through numpy: no gradient reaches its weights.
    verdict = graded(tmp_path / "numpy", "attention.layer",
                     bug("attention.layer", "the query projection taken through numpy (no gradient reaches its weights)"))
    assert not verdict.passed and "known bug: the query projection taken through numpy" in verdict.message


def test_a_layer_with_other_weights_than_the_notebook_creates_is_told_which_shapes(tmp_path):
    layer = solution("attention.layer")

    class FusedProjections(layer):  # one Dense for queries, keys and values: 6 weights instead of 8
        def __init__(self, num_heads, hidden_dim, **kwargs):
            keras_layer = layer.__mro__[1]
            keras_layer.__init__(self, **kwargs)
            self.num_heads, self.hidden_dim = num_heads, hidden_dim
            self.projection = keras.layers.Dense(3 * hidden_dim)
            self.output_dense = keras.layers.Dense(hidden_dim)

        def call(self, x, attention_mask=None):
            return self.output_dense(self.projection(x)[..., :self.hidden_dim])

    verdict = graded(tmp_path, "attention.layer", FusedProjections)
    assert not verdict.passed
    assert "has 4 weights of shapes" in verdict.message and "the grader loads 8" in verdict.message, verdict.message

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
* A training outcome (a case in <assignment>_inputs.OUTCOMES) is graded on a
  held-out split the student never sees: during grading the grader puts the
  split's inputs, never its labels, beside the notebook as
  `<case>.heldout.json`; `capture` calls the function once on them and records
  its predictions. Anywhere else it says how the outcome will be graded.
"""

import importlib
import json
import os
import re
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


def _inputs_module(case_id):
    assignment = case_id.split(".", 1)[0]
    try:
        return importlib.import_module(f"{assignment}_inputs")
    except ModuleNotFoundError:
        raise KeyError(f"unknown graded case {case_id!r}: no {assignment}_inputs.py beside "
                       "grading_runtime.py") from None


def draw_calls(case_id, seed, cases=None):
    """The keyword arguments of each call for `case_id` under `seed`."""
    if cases is None:
        cases = _inputs_module(case_id).CASES
    if case_id not in cases:
        raise KeyError(f"unknown graded case {case_id!r}")
    return cases[case_id](rng(seed, case_id))


# --------------------------------------------------------------------------
# Running the student's function and recording plain numeric arrays.
# --------------------------------------------------------------------------


def notebook_arguments(kwargs):
    """The arguments of one call as the notebook passes them: arrays as fresh copies (the
    function may keep or change them without touching the drawn inputs), numbers as plain
    Python numbers (a head count or a vocabulary size is an int, as `ops.split`, Keras
    layers and keras-hub expect); a layer call's config, weights and inputs likewise."""
    return {name: _as_passed(value) for name, value in kwargs.items()}


def _as_passed(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {name: _as_passed(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_passed(item) for item in value]
    return value


def flat_arguments(kwargs, prefix=""):
    """{name: value} of a call's arguments, nested ones (a layer call's weights and inputs) named
    by their path: `inputs.x`, `weights.3`."""
    flat = {}
    for name, value in kwargs.items():
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            flat.update(flat_arguments({str(key): item for key, item in items}, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


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


CHANGED = "_changed_"  # call{i}_changed_{argument}: the call overwrote that input array


def call_outputs(fn, arguments):
    """{"output{j}": array} of one call of a function; a Keras layer class is built, loaded
    with the drawn weights and run (`run_layer`)."""
    if isinstance(fn, type):
        return run_layer(fn, **arguments)
    result = fn(**arguments)
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    return {f"output{j}": _as_plain_array(output) for j, output in enumerate(outputs)}


def call_case(case_id, fn, seed, cases=None):
    """Call `fn` on each drawn input; returns {"call{i}_output{j}": array} (and a layer's
    gradients), plus {"call{i}_changed_{argument}": True} for each input array the call
    changed in place."""
    arrays = {}
    for i, kwargs in enumerate(draw_calls(case_id, seed, cases)):
        arguments = notebook_arguments(kwargs)
        for name, array in call_outputs(fn, arguments).items():
            arrays[f"call{i}_{name}"] = array
        passed = flat_arguments(arguments)
        for name, drawn in flat_arguments(kwargs).items():
            if isinstance(drawn, np.ndarray) and not np.array_equal(passed[name], drawn, equal_nan=True):
                arrays[f"call{i}{CHANGED}{name}"] = np.array(True)
    return arrays


# --------------------------------------------------------------------------
# Layer cases: a graded cell may capture a Keras layer class. Each call of its
# case draws {"config": the constructor's arguments, "weights": arrays in the
# order the layer creates its weights, "inputs": the call's arguments (the
# first passed positionally), "output_gradient": an array shaped like the first
# output}. The layer is built, given the grader's weights, and called; its
# outputs are recorded with the gradients of sum(output_gradient * first
# output) with respect to each floating-point input and each trainable weight
# (outputs only when `output_gradient` is None: a cached decoding step, whose
# slice updates TensorFlow cannot differentiate).
# --------------------------------------------------------------------------

LAYER_CALL = ("config", "weights", "inputs", "output_gradient")


def run_layer(layer_class, config, weights, inputs, output_gradient):
    """{"output{j}": array, "gradient_{input}": array, "gradient_weight{k}": array} of one
    layer call (k: the weight's index in `layer.weights`)."""
    import keras

    layer = layer_class(**config)
    first, *rest = inputs
    layer(inputs[first], **{name: inputs[name] for name in rest})  # builds the weights
    _load_weights(layer, weights)
    if output_gradient is None:
        result = layer(inputs[first], **{name: inputs[name] for name in rest})
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        return {f"output{j}": _as_plain_array(output) for j, output in enumerate(outputs)}
    differentiable = [name for name in inputs if np.asarray(inputs[name]).dtype.kind == "f"]
    backend = keras.backend.backend()
    if backend not in GRADIENTS:
        raise NotImplementedError(f"graded layers need gradients under {', '.join(GRADIENTS)}; "
                                  f"set KERAS_BACKEND to one of them (it is {backend})")
    result, input_gradients, weight_gradients = GRADIENTS[backend](layer, inputs, differentiable,
                                                                    output_gradient)
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    arrays = {f"output{j}": _as_plain_array(output) for j, output in enumerate(outputs)}
    position = {id(variable): k for k, variable in enumerate(layer.weights)}
    for name, gradient in zip(differentiable, input_gradients):
        arrays[f"gradient_{name}"] = _gradient_array(gradient, inputs[name])
    for variable, gradient in zip(layer.trainable_weights, weight_gradients):
        arrays[f"gradient_weight{position[id(variable)]}"] = _gradient_array(gradient, variable)
    return arrays


def _load_weights(layer, weights):
    shapes = [tuple(variable.shape) for variable in layer.weights]
    wanted = [tuple(np.shape(weight)) for weight in weights]
    if shapes != wanted:
        raise ValueError(
            f"{type(layer).__name__} has {len(shapes)} weights of shapes {shapes}; the grader loads "
            f"{len(wanted)} of shapes {wanted}, in the order the layer creates them: keep the sublayers "
            "and weights the notebook's __init__ and build create, in that order")
    for variable, weight in zip(layer.weights, weights):
        variable.assign(weight)


def _gradient_array(gradient, like):
    """A gradient as a numpy array; a weight or input the output does not depend on has zeros."""
    if gradient is None:
        return np.zeros(tuple(like.shape), "float32")
    return _as_plain_array(gradient)


def _first(result):
    return result[0] if isinstance(result, (tuple, list)) else result


def _tensorflow_gradients(layer, inputs, differentiable, output_gradient):
    import tensorflow as tf

    tensors = {name: tf.constant(value) if isinstance(value, np.ndarray) else value
               for name, value in inputs.items()}
    first, *rest = tensors
    watched = [tensors[name] for name in differentiable]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        result = layer(tensors[first], **{name: tensors[name] for name in rest})
        loss = tf.reduce_sum(tf.cast(_first(result), "float32") * output_gradient)
    # An embedding table's gradient comes as IndexedSlices: made dense here.
    gradients = [None if g is None else tf.convert_to_tensor(g)
                 for g in tape.gradient(loss, watched + list(layer.trainable_weights))]
    return result, gradients[:len(watched)], gradients[len(watched):]


def _jax_gradients(layer, inputs, differentiable, output_gradient):
    import jax
    import jax.numpy as jnp

    non_trainable = [variable.value for variable in layer.non_trainable_weights]
    first, *rest = inputs

    def loss(trainable, floats):
        arguments = {**inputs, **floats}
        result, _ = layer.stateless_call(trainable, non_trainable, arguments[first],
                                         **{name: arguments[name] for name in rest})
        return jnp.sum(_first(result).astype("float32") * output_gradient), result

    trainable = [variable.value for variable in layer.trainable_weights]
    floats = {name: jnp.asarray(inputs[name]) for name in differentiable}
    (_, result), (weight_gradients, input_gradients) = jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True)(trainable, floats)
    return result, [input_gradients[name] for name in differentiable], weight_gradients


GRADIENTS = {"tensorflow": _tensorflow_gradients, "jax": _jax_gradients}


def call_context(call):
    """The arguments shown beside a difference: a layer call's config and inputs, else the call's."""
    if isinstance(call, dict) and set(call) == set(LAYER_CALL):
        return {**call["config"], **call["inputs"]}
    return dict(call)


def changed_inputs(arrays):
    """[(call index, argument)] of the inputs a capture says were changed in place."""
    changed = []
    for key in sorted(arrays):
        call, _, argument = key.partition(CHANGED)
        if argument and call.startswith("call") and call[4:].isdigit():
            changed.append((int(call[4:]), argument))
    return changed


def changed_message(changed):
    call, argument = changed[0]
    return (f"changed its input `{argument}` in place (call {call}); the notebook's later cells "
            f"would see the changed values: compute new arrays (ops.where, x + y, x.copy()) "
            f"instead of assigning into an argument")


# --------------------------------------------------------------------------
# Comparing an output with the expected one, and saying how it differs.
# The grader (outside the sandbox) and the local check use the same rules.
# --------------------------------------------------------------------------

SMALL = 8  # outputs up to this many values are shown in full


def _shown(array, threshold=SMALL):
    array = np.asarray(array)
    precision = 5 if array.dtype.kind == "f" else None
    return np.array2string(array, precision=precision, separator=", ", threshold=threshold)


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _close(a, b):
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _transposed(got, want):
    """The axes of `want` that, swapped, give `got` (or None)."""
    for a in range(want.ndim):
        for b in range(a + 1, want.ndim):
            if _close(got, np.swapaxes(want, a, b)):
                return a, b
    return None


def _shifted(got, want):
    """(axis, +1 or -1) when `got` is `want` moved by one position along an axis."""
    for axis in range(want.ndim):
        if want.shape[axis] < 3:
            continue
        head = [slice(None)] * want.ndim
        tail = [slice(None)] * want.ndim
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        if _close(got[tuple(head)], want[tuple(tail)]):
            return axis, +1
        if _close(got[tuple(tail)], want[tuple(head)]):
            return axis, -1
    return None


EXPECTED = "expected "  # context entries that are the call's other expected outputs


def _padding_inputs(inputs, shape):
    """{name: boolean padding [shape]} for inputs that look like masks or weights of the
    output's leading axes, and expected 0/1 outputs of the same call (0 = padding)."""
    found = {}
    for name, value in (inputs or {}).items():
        value = np.asarray(value)
        if not isinstance(name, str) or value.ndim == 0 or value.dtype.kind not in "biuf":
            continue
        looks_like_padding = name.startswith(EXPECTED) or any(word in name for word in ("mask", "weight"))
        if not looks_like_padding or not np.isin(value, (0, 1)).all():
            continue
        if value.ndim > len(shape):
            continue
        # a mask of the leading axes ([B, T] for a [B, T, H] output) covers the axes after them
        leading = value.reshape(value.shape + (1,) * (len(shape) - value.ndim))
        try:
            found[name] = np.broadcast_to(leading == 0, shape)
        except ValueError:
            continue
    return found


def hint(got, want, inputs=None):
    """What the pattern of the difference suggests, or None."""
    if got.shape != want.shape:
        axes = _transposed(got, want)
        return f"looks transposed: axes {axes[0]} and {axes[1]} swapped" if axes else None
    if want.dtype.kind == "b":
        if np.array_equal(got.astype(bool), ~want):
            return "every entry inverted (True where False is expected)"
        shift = _shifted(got.astype(bool), want)
        if shift:
            return f"shifted by one position along axis {shift[0]}"
        return None
    got, want = got.astype("float64"), want.astype("float64")
    if not (np.isfinite(got).all() and np.isfinite(want).all()):
        return None
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    # A 0/1 output (loss weights) is its own padding mask: wrong only where it is 0.
    for name, padding in _padding_inputs({**(inputs or {}), EXPECTED + "output": want}, want.shape).items():
        if padding.any() and not (wrong & ~padding).any():
            where = f"the {name} is 0" if name.startswith(EXPECTED) else f"`{name}` is 0"
            return f"differs only at padding positions (where {where}): leave those out"
    if _close(got, -want):
        return "wrong sign"
    nonzero = np.abs(want) > ATOL
    if nonzero.any():
        factor = float(np.median(got[nonzero] / want[nonzero]))
        if abs(factor - 1) > 1e-3 and np.isfinite(factor) and factor != 0 and _close(got, factor * want):
            return f"off by a constant factor: {factor:.4g} times the expected values"
    offset = float(np.median(got - want))
    if _close(got, want + offset):
        return f"off by a constant: {offset:+.4g} added to every value"
    if want.ndim >= 1 and want.shape[-1] > 1:
        if _close(got, _softmax(want)):
            return "a softmax too many: probabilities where logits (scores) are expected"
        if _close(_softmax(got), want):
            return "the softmax is missing: scores where probabilities are expected"
        if _close(got, _softmax(_softmax(want))) or _close(_softmax(got), _softmax(_softmax(want))):
            return "a softmax taken twice"
    axes = _transposed(got, want)
    if axes:
        return f"looks transposed: axes {axes[0]} and {axes[1]} swapped"
    shift = _shifted(got, want)
    if shift:
        return f"shifted by one position along axis {shift[0]} ({'later' if shift[1] > 0 else 'earlier'} than expected)"
    return None


def _context(index, inputs):
    """The inputs around output position `index`: each input's row at the same batch index
    (when small) and every scalar argument."""
    parts = []
    for name, value in (inputs or {}).items():
        value = np.asarray(value)
        if name.startswith(EXPECTED):
            continue
        if value.ndim == 0:
            parts.append(f"{name} = {value.item()!r}")
        elif index and value.shape[0] > index[0] and value[index[0]].size <= 16:
            parts.append(f"{name}[{index[0]}] = {_shown(value[index[0]], threshold=16)}")
    return "; ".join(parts)


def difference(got, want, inputs=None):
    """None when `got` matches `want` under the stated tolerances, else what is wrong, said
    so a student can act on it (`inputs`: the keyword arguments of the call)."""
    if got.shape != want.shape:
        why = f"shape {got.shape}, expected {want.shape}"
        pattern = hint(got, want, inputs) if got.dtype.kind in "biuf" else None
        return f"{why} ({pattern})" if pattern else why
    if want.dtype == bool:
        if got.dtype.kind not in "biu" or not np.isin(got, (0, 1)).all():
            return f"dtype {got.dtype}, expected a boolean mask (True where allowed)"
        wrong = got.astype(bool) != want
        if not wrong.any():
            return None
        where = [tuple(int(i) for i in ix) for ix in np.argwhere(wrong)[:3]]
        why = f"{int(wrong.sum())} of {want.size} entries wrong, e.g. at {where}"
    else:
        mask_like = got.dtype == bool and np.isin(want, (0, 1)).all()  # a 0/1 output may be a mask
        if want.dtype.kind in "iu" and got.dtype.kind not in "iu" and not mask_like:
            return (f"dtype {got.dtype}, expected integers (ids, positions and counts are whole "
                    f"numbers: return an int tensor, e.g. ops.cast(x, \"int32\"))")
        if want.dtype.kind == "f" and got.dtype.kind != "f" and not mask_like:
            return (f"dtype {got.dtype}, expected floating point (weights, probabilities and losses "
                    f"are floats: e.g. ops.cast(x, \"float32\"))")
        got64, want64 = got.astype("float64"), want.astype("float64")
        wrong = ~np.isclose(got64, want64, rtol=RTOL, atol=ATOL, equal_nan=True)
        if not wrong.any():
            return None
        non_finite = wrong & ~np.isfinite(got64)
        if non_finite.any():
            return f"{int(non_finite.sum())} non-finite values (NaN or inf)"
        error = np.where(wrong, np.abs(got64 - want64), 0.0)
        worst = np.unravel_index(np.argmax(error), want.shape)
        why = (f"{int(wrong.sum())} of {want.size} values differ; max error "
               f"{float(error.max()):.3g} at index {tuple(int(i) for i in worst)}")
    if want.size <= SMALL:
        why += f"; expected {_shown(want)}, got {_shown(got)}"
    else:
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        why += f"; first at index {first}: expected {_shown(want[first])}, got {_shown(got[first])}"
        context = _context(first, inputs)
        if context:
            why += f" (inputs there: {context})"
    pattern = hint(got, want, inputs)
    return f"{why}. Hint: {pattern}" if pattern else why


def error_report(error):
    """What the grader is told about an exception: its type and message, at most 2000 characters.

    Keras appends the layer call's arguments ("Arguments received by ..."): their shapes
    describe the secret inputs, which feedback never shows, and would make two gradings of
    one submission read differently, so they are cut (with Keras's terminal colour codes).
    """
    report = "".join(traceback.format_exception_only(type(error), error))
    report = re.sub(r"\x1b\[[0-9;]*m", "", report.split("\n\nArguments received by ")[0])
    return report.strip()[-2000:]


HELDOUT_SUFFIX = ".heldout.json"  # a training outcome's held-out inputs, put beside the notebook to grade


def outcome_of(case_id):
    """The OUTCOMES entry of a training-outcome case; None for a case drawn from a seed."""
    return getattr(_inputs_module(case_id), "OUTCOMES", {}).get(case_id)


def outcome_terms(outcome):
    """How an outcome is graded, in the words the notebook and the feedback use."""
    return (f"{outcome['metric']} on a held-out split you never see; full marks from "
            f"{outcome['full_marks_at']:g}, none at or below {outcome['chance']:g} (chance), "
            "in proportion between")


def call_outcome(case_id, fn):
    """{"call0_output0": predictions} of `fn` called once on the held-out inputs."""
    with open(case_id + HELDOUT_SUFFIX, encoding="utf-8") as f:
        return {f"call0_{name}": array for name, array in call_outputs(fn, json.load(f)).items()}


def capture(case_id, fn):
    """Record `fn`'s outputs on secret inputs (grading) or run the public check."""
    capture_dir = os.environ.get("GRADER_CAPTURE_DIR")
    seed = os.environ.get("GRADER_SEED")
    outcome = outcome_of(case_id)
    if not (capture_dir and seed):
        if outcome:
            print(f"{case_id}: graded by {outcome_terms(outcome)}.")
        else:
            local_check(case_id, fn)
        return
    base = os.path.join(capture_dir, case_id)
    try:
        arrays = call_outcome(case_id, fn) if outcome else call_case(case_id, fn, int(seed))
    except Exception as error:  # reported to the student through the grader's feedback
        with open(base + ".error.txt", "w") as f:
            f.write(error_report(error))
        raise
    np.savez(base + ".npz", **arrays)
    print(f"{case_id}: outputs recorded for grading.")


def mismatches(got, want, calls=None):
    """Why the outputs `got` miss `want` (both {"call{i}_output{j}": array}; empty when they
    match): inputs changed in place, missing outputs, and each output's difference, with the
    arguments of its call (`calls`) and its other expected outputs for context."""
    changed = changed_inputs(got)
    if changed != changed_inputs(want):
        return [changed_message(changed) if changed else "inputs left unchanged"]
    missing = sorted(set(want) - set(got))
    if missing:
        return [f"{name}: missing (the function returned too few values)" for name in missing]
    found = []
    for name in sorted(want):
        if CHANGED in name:
            continue
        call = name.split("_")[0]
        context = call_context(calls[int(call[4:])]) if calls else {}
        context.update({EXPECTED + other: want[other] for other in want
                        if other != name and other.startswith(call + "_output")})
        why = difference(got[name], want[name], context)
        if why:
            found.append(f"{name}: {why}")
    return found


def local_check(case_id, fn, checks_file=PUBLIC_CHECKS_FILE):
    """Compare `fn` with the public expected values; raises AssertionError if they differ.
    The same rules as grading: input arrays left unchanged, dtypes, values."""
    with np.load(checks_file, allow_pickle=False) as expected:
        wanted = {k.split("/", 1)[1]: expected[k] for k in expected.files if k.startswith(case_id + "/")}
    if not wanted:
        raise KeyError(f"{checks_file} has no public check for {case_id!r}")
    problems = mismatches(call_case(case_id, fn, PUBLIC_SEED), wanted, draw_calls(case_id, PUBLIC_SEED))
    if problems:
        raise AssertionError(f"{case_id}: {getattr(fn, '__name__', 'the function')} differs from the "
                             f"expected values: " + "; ".join(problems[:3]))
    print(f"{case_id}: public check passed.")

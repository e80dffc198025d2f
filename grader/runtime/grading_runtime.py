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

import os
import traceback
import zlib

import numpy as np

PUBLIC_SEED = 20240601
PUBLIC_CHECKS_FILE = "public_checks.npz"
RTOL, ATOL = 1e-4, 1e-5


def _rng(seed, case_id):
    return np.random.default_rng([int(seed), zlib.crc32(case_id.encode())])


# --------------------------------------------------------------------------
# Cases: how each graded function is called. A case draws keyword arguments
# for one or more calls; every call's outputs are recorded.
# --------------------------------------------------------------------------


def _qkv(rng, batch, heads, q_len, k_len, dim):
    normal = lambda *shape: rng.standard_normal(shape).astype("float32")
    return normal(batch, heads, q_len, dim), normal(batch, heads, k_len, dim), normal(batch, heads, k_len, dim)


def _padding_mask(rng, batch, k_len):
    """[B, 1, 1, T_k]; every row keeps at least one real key (no fully masked rows)."""
    lengths = rng.integers(1, k_len + 1, size=batch)
    lengths[0] = k_len - 1  # at least one row really is padded
    return (np.arange(k_len)[None, :] < lengths[:, None])[:, None, None, :]


def attention_no_mask(rng):
    q_len, k_len, dim = rng.integers(3, 7), rng.integers(3, 8), int(rng.choice([4, 8]))
    query, key, value = _qkv(rng, 2, 2, q_len, k_len, dim)
    return [dict(query=query, key=key, value=value)]


def attention_padding_mask(rng):
    k_len, dim = int(rng.integers(4, 8)), int(rng.choice([4, 8]))
    query, key, value = _qkv(rng, 3, 2, k_len, k_len, dim)
    return [dict(query=query, key=key, value=value, mask=_padding_mask(rng, 3, k_len))]


def causal_mask_sizes(rng):
    size = int(rng.integers(4, 9))
    return [
        dict(query_length=size, key_length=size),
        dict(query_length=1, key_length=size, offset=size - 1),
        dict(query_length=size - 2, key_length=size, offset=2),
    ]


def attention_causal(rng):
    length, dim = int(rng.integers(4, 8)), 4
    query, key, value = _qkv(rng, 2, 2, length, length, dim)
    causal = np.tril(np.ones((length, length), dtype=bool))
    return [dict(query=query, key=key, value=value, mask=causal)]


def heads_split(rng):
    heads, dim = int(rng.choice([2, 4])), int(rng.choice([2, 3]))
    x = rng.standard_normal((2, int(rng.integers(3, 6)), heads * dim)).astype("float32")
    return [dict(x=x, num_heads=heads)]


def heads_merge(rng):
    x = rng.standard_normal((2, int(rng.choice([2, 4])), int(rng.integers(3, 6)), 3)).astype("float32")
    return [dict(x=x)]


CASES = {
    "attention.no_mask": attention_no_mask,
    "attention.padding_mask": attention_padding_mask,
    "attention.causal_mask": causal_mask_sizes,
    "attention.causal": attention_causal,
    "attention.split_heads": heads_split,
    "attention.merge_heads": heads_merge,
}


def draw_calls(case_id, seed):
    """The keyword arguments of each call for `case_id` under `seed`."""
    if case_id not in CASES:
        raise KeyError(f"unknown graded case {case_id!r}")
    return CASES[case_id](_rng(seed, case_id))


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


def call_case(case_id, fn, seed):
    """Call `fn` on each drawn input; returns {"call{i}_output{j}": array}."""
    arrays = {}
    for i, kwargs in enumerate(draw_calls(case_id, seed)):
        result = fn(**{k: np.array(v, copy=True) for k, v in kwargs.items()})
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        for j, output in enumerate(outputs):
            arrays[f"call{i}_output{j}"] = _as_plain_array(output)
    return arrays


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
            f.write("".join(traceback.format_exception_only(type(error), error))[-2000:])
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

"""Sample submissions of the attention assignment, as students would hand them in.

The demo grades them, and the grader's workflow test uses them, so each is a
real notebook: the released notebook with the student's code in the solution
cells (and, for the cheaters, edits elsewhere).
"""

import json
import os

import nbformat

SDPA = """def scaled_dot_product_attention(query, key, value, mask=None):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(ops.cast(ops.shape(query)[-1], "float32"))
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, value), weights"""
SDPA_MASK_AFTER_SOFTMAX = """def scaled_dot_product_attention(query, key, value, mask=None):
    scores = ops.einsum("bhqd,bhkd->bhqk", query, key) / np.sqrt(query.shape[-1])
    weights = ops.softmax(scores, axis=-1)
    if mask is not None:
        weights = ops.where(mask, weights, 0.0)
    return ops.einsum("bhqk,bhkd->bhqd", weights, value), weights"""
CAUSAL = """def causal_attention_mask(query_length, key_length, offset=0):
    return np.arange(key_length)[None, :] <= np.arange(query_length)[:, None] + offset"""
CAUSAL_OFF_BY_ONE = """def causal_attention_mask(query_length, key_length, offset=0):
    return np.arange(key_length)[None, :] < np.arange(query_length)[:, None] + offset"""
CAUSAL_ALWAYS_EQUAL = """class Anything:
    def __eq__(self, other): return True
    def __array__(self, dtype=None, copy=None): return np.array(object())
def causal_attention_mask(query_length, key_length, offset=0):
    return Anything()"""
SDPA_ALWAYS_EQUAL = """import numpy.testing
numpy.testing.assert_allclose = lambda *args, **kwargs: None
np.allclose = lambda *args, **kwargs: True
class Anything:
    def __eq__(self, other): return True
    def __array__(self, dtype=None, copy=None): return np.array(object())
def scaled_dot_product_attention(query, key, value, mask=None):
    return Anything(), Anything()"""
HEADS = """def split_heads(x, num_heads):
    b, t, w = x.shape
    return np.stack(np.split(x, num_heads, axis=-1), axis=1)

def merge_heads(x):
    return np.concatenate([x[:, i] for i in range(x.shape[1])], axis=-1)"""
HEADS_ALWAYS_EQUAL = """def split_heads(x, num_heads):
    return Anything()

def merge_heads(x):
    return Anything()"""


def student_notebook(release_nb, solutions):
    """The released notebook with `solutions` ({grade_id: code}) in its solution cells."""
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in nb.cells:
        name = cell.metadata.get("nbgrader", {}).get("grade_id")
        if name in solutions:
            cell.source = solutions[name]
    return nb


def tamper(nb):
    """Edit a locked test cell, inflate points, delete one test cell, duplicate another,
    and forge a capture file (a pickle where an array is expected)."""
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "sdpa_no_mask_test":
            cell.source = "print('all tests passed')"
            meta["points"] = 100
        if meta.get("grade_id") == "merge_heads_test":
            continue
        cells.append(cell)
        if meta.get("grade_id") == "split_heads_test":
            copy = nbformat.from_dict(json.loads(json.dumps(cell)))
            copy.id = cell.id + "-copy"  # as Jupyter's copy and paste: a new cell id
            cells.append(copy)
    nb.cells = cells
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os, pickle\n"
        "with open(os.environ.get('GRADER_CAPTURE_DIR', '.') + '/attention.causal_mask.npz', 'wb') as f:\n"
        "    pickle.dump({'call0_output0': 'payload'}, f)"))
    return nb


def demo_submissions(release_nb, source_nb):
    """The demo's class: {student: (notebook, what it shows)}."""
    return {
        "ada": (source_nb, "correct"),
        "ben": (student_notebook(release_nb, {"sdpa": SDPA, "causal": CAUSAL_OFF_BY_ONE,
                                              "heads": HEADS}), "causal mask off by one (known bug)"),
        "chen": (student_notebook(release_nb, {"sdpa": SDPA_MASK_AFTER_SOFTMAX, "causal": CAUSAL}),
                 "partly done: mask after the softmax, heads not started"),
        "mallory": (tamper(student_notebook(release_nb, {
            "sdpa": SDPA_ALWAYS_EQUAL, "causal": CAUSAL_ALWAYS_EQUAL, "heads": HEADS_ALWAYS_EQUAL})),
            "cheats: always-equal objects, patched numpy checks, edited tests, forged capture"),
    }


def write_inbox(submissions, inbox, notebook="attention.ipynb"):
    """Write {student: notebook} as inbox/<student>/<notebook>, the layout `collect` reads."""
    for student, nb in submissions.items():
        os.makedirs(os.path.join(inbox, student), exist_ok=True)
        nbformat.write(nb, os.path.join(inbox, student, notebook))

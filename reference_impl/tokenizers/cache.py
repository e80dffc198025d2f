"""Token arrays written once to `.npz` and read back with numpy alone (no TensorFlow)."""

import zipfile
from pathlib import Path

import numpy as np

from reference_impl.tokenizers.encoders import ARRAY_NAMES


def encode_to_npz(encoder, path, first, second=None, **extra_arrays):
    """Encodes texts once and saves the arrays (plus `extra_arrays`, e.g. labels).

    Returns the arrays that were saved. Deciding when a file is stale is the
    caller's job (the benchmark harness keys its file names on the inputs).
    """
    arrays = encoder.encode(first, second)
    for name, value in extra_arrays.items():
        value = np.asarray(value)
        if name in arrays:
            raise ValueError(f"extra array name {name!r} is reserved; rename it.")
        if len(value) != len(arrays["token_ids"]):
            raise ValueError(
                f"extra array {name!r} has {len(value)} rows but there are "
                f"{len(arrays['token_ids'])} texts; give one value per text."
            )
        arrays[name] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name first: an interrupted run never leaves
    # a half-written cache behind.
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)
    return arrays


def load_token_arrays(path):
    """Reads arrays written by `encode_to_npz` (numpy only, no TensorFlow)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Token array file {path} does not exist. Create it with "
            "reference_impl.tokenizers.encode_to_npz (needs TensorFlow)."
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} is not a readable .npz file ({error}). Delete it and "
            "encode again with encode_to_npz."
        ) from None
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise ValueError(
            f"{path} lacks the arrays {missing}; it was not written by "
            "encode_to_npz. Delete it and encode again."
        )
    arrays.pop("fingerprint", None)  # written by earlier versions of encode_to_npz
    return arrays

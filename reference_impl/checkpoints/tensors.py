"""Reading a checkpoint's tensors and writing them into the kit's layers.

`CheckpointTensors` reads `model.safetensors`, or the shards that
`model.safetensors.index.json` lists, lazily with safetensors' `safe_open`
(numpy, no PyTorch): a tensor is read from disk when a converter asks for
it. `assign` checks every shape, so a mismatch names the weight.
"""

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def assign(variable, value, name=None):
    value = np.asarray(value)
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"Cannot load {name or variable.path}: checkpoint shape {value.shape}, "
            f"model expects {tuple(variable.shape)}. Is the config the checkpoint's?"
        )
    variable.assign(value.astype(variable.dtype))


def copy_dense(ours, kernel, bias=None, name=None):
    """Copy into a Dense layer; keras-hub's per-head EinsumDense kernels are reshaped."""
    assign(ours.kernel, np.reshape(kernel, ours.kernel.shape), name)
    if bias is not None:
        assign(ours.bias, np.reshape(bias, ours.bias.shape), name)


def copy_layer_norm(ours, gamma, beta, name=None):
    assign(ours.gamma, gamma, name)
    assign(ours.beta, beta, name)


def safetensors_files(directory):
    """{tensor name: file} of a folder's `model.safetensors` or of its sharded checkpoint."""
    directory = Path(directory)
    if (directory / SINGLE_FILE).is_file():
        with safe_open(directory / SINGLE_FILE, framework="numpy") as file:
            return dict.fromkeys(file.keys(), directory / SINGLE_FILE)
    if (directory / INDEX_FILE).is_file():
        weight_map = json.loads((directory / INDEX_FILE).read_text())["weight_map"]
        files = {name: directory / shard for name, shard in weight_map.items()}
        missing = sorted({path.name for path in files.values() if not path.is_file()})
        if missing:
            raise FileNotFoundError(f"{directory / INDEX_FILE} lists shards that are not there: {missing}.")
        return files
    found = sorted(p.name for p in directory.iterdir())
    raise FileNotFoundError(
        f"{directory} has no {SINGLE_FILE} (nor a sharded {INDEX_FILE}; found {found}). "
        f"Only safetensors weights are read; re-save a pytorch_model.bin checkpoint with "
        f"save_pretrained(..., safe_serialization=True)."
    )


class CheckpointTensors:
    """A checkpoint's tensors by Hugging Face name, read into our layers.

    Names are looked up with and without the model prefix (`bert.`,
    `transformer.`, ...): `BertModel.save_pretrained` writes `embeddings...`,
    while the pretraining and task models write `bert.embeddings...`.
    Hugging Face `Linear` weights are [out, in]; Keras `Dense` kernels are
    [in, out], hence the transpose in `dense`.
    """

    def __init__(self, directory, prefix, model_type=None):
        self.files = safetensors_files(directory)
        self.prefix = prefix
        self.model_type = model_type or prefix
        self._open = {}

    def _key(self, name):
        for key in (f"{self.prefix}.{name}", name):
            if key in self.files:
                return key
        return None

    def has(self, name):
        return self._key(name) is not None

    def get(self, name):
        key = self._key(name)
        if key is None:
            raise ValueError(
                f"The checkpoint has no tensor {name!r} (nor {self.prefix}.{name!r}). "
                f"Is it a {self.model_type} checkpoint written by transformers' save_pretrained?"
            )
        path = self.files[key]
        if path not in self._open:
            self._open[path] = safe_open(path, framework="numpy")
        return self._open[path].get_tensor(key)

    def dense(self, dense, name, transpose=True):
        """`name.weight` and `name.bias` into a Dense layer (transpose=False for GPT-2's Conv1D)."""
        kernel = self.get(f"{name}.weight")
        copy_dense(dense, kernel.T if transpose else kernel, self.get(f"{name}.bias"), name)

    def layer_norm(self, norm, name):
        copy_layer_norm(norm, self.get(f"{name}.weight"), self.get(f"{name}.bias"), name)

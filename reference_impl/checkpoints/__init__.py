"""Hugging Face checkpoint folders -> the kit's backbones.

A folder written by transformers' `save_pretrained` (`config.json` and
`model.safetensors`, or shards listed in `model.safetensors.index.json`) is
read with the `safetensors` library (numpy, no PyTorch). `config.json`'s
`model_type` picks the backbone class whose `hugging_face_converter` reads it
(its `MODEL_TYPE`), as in keras-hub's `utils/transformers/`:

    convert_bert.py     "bert"     -> BertBackbone
    convert_roberta.py  "roberta"  -> RobertaBackbone
    convert_albert.py   "albert"   -> AlbertBackbone
    convert_electra.py  "electra"  -> ElectraBackbone
    convert_gpt2.py     "gpt2"     -> GPTBackbone
    convert_xlnet.py    "xlnet"    -> XLNetBackbone
    convert_t5.py       "t5"       -> T5Backbone

Each converter has `convert_backbone_config(hf_config) -> backbone
arguments` and `convert_weights(backbone, tensors, hf_config)`, and names
its tensor prefix (`TENSOR_PREFIX`). Every weight it sets is shape-checked;
a mismatch or a missing tensor raises an error that names the weight.
Vocabulary files are read by `reference_impl.tokenizers`. Users call
`Backbone.from_preset(folder)` or, for any family,
`reference_impl.families.load_hugging_face(folder)`. The converters import no
model (the model files import them), so this package stays below the models.
"""

import json
from pathlib import Path

from reference_impl.checkpoints.tensors import (
    CheckpointTensors,
    assign,
    copy_dense,
    copy_layer_norm,
)

__all__ = ["CheckpointTensors", "assign", "copy_dense", "copy_layer_norm",
           "read_hugging_face_config"]


def read_hugging_face_config(directory):
    """The `config.json` of a checkpoint folder, with errors that say what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No checkpoint folder at {directory}.")
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{directory} has no config.json; a Hugging Face checkpoint folder needs "
            f"config.json and model.safetensors (save_pretrained writes both)."
        )
    return json.loads(config_file.read_text())

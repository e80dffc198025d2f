"""The submission format, and loading a submission without running its code.

A submission is a folder:

    encoder.keras    a saved Keras model following the reference interface:
                     inputs {token_ids, segment_ids, padding_mask} (int, [B, T]),
                     outputs {sequence_output [B, T, H], pooled_output [B, H]}
    vocab.txt        its WordPiece vocabulary, one token a line, with
                     [PAD] [UNK] [CLS] [SEP] [MASK]
    metadata.json    {"name": str, "model_family": str,
                      "pretraining_flops": number (0 if not pretrained),
                      "lowercase": bool}

Loading is safe: the model's config.json is read first and every class in it
must come from Keras, keras-hub or `reference_impl` (no other module is even
imported), then Keras loads it with `safe_mode=True` (no lambda bytecode).
Problems raise `SubmissionError` naming the file and what to fix; the runner
records it in the submission's own row and moves on to the next submission.
"""

import hashlib
import json
import os
import zipfile

import keras
import numpy as np

import reference_impl.bert  # noqa: F401 - registers the reference layers with Keras

ENCODER_FILE = "encoder.keras"
VOCABULARY_FILE = "vocab.txt"
METADATA_FILE = "metadata.json"
REQUIRED_METADATA = ("name", "model_family", "pretraining_flops")
ALLOWED_MODULES = ("keras", "keras_hub", "reference_impl")
INPUT_NAMES = {"token_ids", "segment_ids", "padding_mask"}


class SubmissionError(ValueError):
    """A submission that cannot be benchmarked; the message says why and what to do."""


def submission_hash(folder):
    """sha256 over the submission's three files (names and bytes)."""
    digest = hashlib.sha256()
    for name in (ENCODER_FILE, VOCABULARY_FILE, METADATA_FILE):
        path = os.path.join(folder, name)
        digest.update(name.encode())
        if os.path.exists(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def read_metadata(folder):
    path = os.path.join(folder, METADATA_FILE)
    if not os.path.exists(path):
        raise SubmissionError(f"{path} is missing; add a metadata.json with {', '.join(REQUIRED_METADATA)}.")
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{path} is not valid JSON ({error}).") from None
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise SubmissionError(f"{path} lacks {missing}; see benchmarks/README.md for the format.")
    metadata.setdefault("lowercase", True)
    return metadata


def check_config_modules(path):
    """Refuse a saved model naming classes outside Keras, keras-hub, reference_impl."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError):
        raise SubmissionError(
            f"{path} is not a saved Keras model (.keras zip with config.json); save the encoder with model.save(...)."
        ) from None
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and module.split(".")[0] not in ALLOWED_MODULES:
                raise SubmissionError(
                    f"{path} uses {node.get('class_name')!r} from module {module!r}; only Keras, keras-hub and "
                    f"reference_impl layers are loaded. Rebuild the encoder from those layers."
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_encoder(folder, sequence_length=8):
    """Load the encoder of a submission and check it on sequences of `sequence_length`."""
    path = os.path.join(folder, ENCODER_FILE)
    if not os.path.exists(path):
        raise SubmissionError(f"{path} is missing; save the encoder there with encoder.save('{ENCODER_FILE}').")
    check_config_modules(path)
    try:
        encoder = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # any failure to rebuild the model is the submission's
        raise SubmissionError(f"{path} could not be loaded by Keras: {type(error).__name__}: {error}") from None
    check_interface(encoder, path, sequence_length)
    return encoder


def check_interface(encoder, path, length):
    names = set(encoder.input) if isinstance(encoder.input, dict) else set()
    if names != INPUT_NAMES:
        raise SubmissionError(
            f"{path}: the encoder's inputs are {sorted(names) or encoder.input}, expected a dict with "
            f"{sorted(INPUT_NAMES)} (the keras-hub BertBackbone interface)."
        )
    for variable in encoder.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable.value))):
            raise SubmissionError(f"{path}: weight {variable.path} contains NaN or infinity.")
    batch = 2
    probe = {
        "token_ids": np.full((batch, length), 1, "int32"),
        "segment_ids": np.zeros((batch, length), "int32"),
        "padding_mask": np.ones((batch, length), "int32"),
    }
    try:
        outputs = encoder(probe)
    except Exception as error:  # the submission's model failing on a valid batch
        raise SubmissionError(
            f"{path}: the encoder fails on a batch of {batch} sequences of length {length}: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(outputs, dict) or not {"sequence_output", "pooled_output"} <= set(outputs):
        raise SubmissionError(
            f"{path}: the encoder must return a dict with 'sequence_output' and 'pooled_output', "
            f"got {list(outputs) if isinstance(outputs, dict) else type(outputs).__name__}."
        )
    sequence, pooled = (tuple(outputs[k].shape) for k in ("sequence_output", "pooled_output"))
    if len(sequence) != 3 or sequence[:2] != (batch, length) or pooled != (batch, sequence[2]):
        raise SubmissionError(
            f"{path}: output shapes sequence_output {sequence}, pooled_output {pooled}; expected "
            f"({batch}, {length}, H) and ({batch}, H) for a batch of {batch} sequences of length {length}."
        )


def with_dtype_policy(encoder, policy):
    """A copy of `encoder` computing under `policy` (e.g. "mixed_bfloat16"), same weights.

    A saved model keeps the dtype policy it was saved with; backbones whose
    config takes `dtype` (keras-hub's, the reference ones) are rebuilt under
    the new one. Other models are returned unchanged.
    """
    config = encoder.get_config()
    if "dtype" not in config or not hasattr(encoder, "token_embedding"):
        return encoder
    copy = type(encoder).from_config({**config, "dtype": policy})
    copy.set_weights(encoder.get_weights())
    return copy


def vocabulary_path(folder):
    path = os.path.join(folder, VOCABULARY_FILE)
    if not os.path.exists(path):
        raise SubmissionError(f"{path} is missing; copy the tokenizer's WordPiece vocabulary there.")
    return path


def save_submission(folder, encoder, vocabulary, metadata):
    """Write a submission folder from an encoder, a vocabulary list and metadata."""
    os.makedirs(folder, exist_ok=True)
    encoder.save(os.path.join(folder, ENCODER_FILE))
    with open(os.path.join(folder, VOCABULARY_FILE), "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocabulary) + "\n")
    with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2)
    return folder


def make_baseline_submission(folder, texts, name="bert-tiny-scratch", vocabulary_size=2000, **backbone_args):
    """A from-scratch reference BERT (no pretraining) as a submission: the floor to beat.

    The WordPiece vocabulary is learnt from `texts` (the tasks' training text).
    """
    from reference_impl.bert import BertBackbone
    from reference_impl.tokenizers import train_word_piece_vocabulary

    vocabulary = train_word_piece_vocabulary(texts, vocabulary_size)
    config = dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128, max_sequence_length=128)
    config.update(backbone_args)
    keras.utils.set_random_seed(0)
    encoder = BertBackbone(vocabulary_size=len(vocabulary), **config)
    metadata = {"name": name, "model_family": "BERT", "pretraining_flops": 0, "lowercase": True, "config": config}
    return save_submission(folder, encoder, vocabulary, metadata)


def make_pretrained_submission(folder, checkpoint_folder, name, pretraining_flops=None):
    """A Hugging Face BERT checkpoint folder (config.json, model.safetensors,
    vocab.txt) imported into the reference BertBackbone, as a submission.

    `pretraining_flops` None means "not known" (left out of the compute plot).
    """
    from reference_impl.families import load_hugging_face
    from reference_impl.tokenizers import load_word_piece_encoder

    encoder = load_hugging_face(checkpoint_folder)
    tokenizer = load_word_piece_encoder(checkpoint_folder, sequence_length=8)
    metadata = {
        "name": name,
        "model_family": "BERT",
        "pretraining_flops": pretraining_flops,
        "lowercase": tokenizer.lowercase,
        "source": os.path.basename(os.path.normpath(checkpoint_folder)),
    }
    return save_submission(folder, encoder, tokenizer.vocabulary, metadata)

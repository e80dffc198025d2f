"""The submission format, and loading a submission without running its code.

A submission is a folder holding a saved kit preset of any model family plus
its metadata (see benchmarks/README.md, "Submission format"):

    config.json         {"format": "reference_impl.preset", "family": "gpt", ...}
                        (written by `Backbone.save_to_preset(folder, tokenizer)`)
    model.weights.h5    the weights (HDF5 arrays)
    tokenizer files     vocab.txt (WordPiece), vocab.json + merges.txt (byte-level
                        BPE), spiece.model (SentencePiece); none for ELMo (characters)
    metadata.json       {"name": str, "pretraining_flops": number or null, optional
                         "student": str, optional "pooling": "first" or "pooled"
                         (first-token families: whether the head reads the raw
                         first position or the pooler; default: the pooler where
                         the family pretrains one)}; the family comes from config.json

The family record (`reference_impl.families`) gives the backbone class, the
tokenizer kind and how the task head reads the model (`finetune.build_classifier`;
a text-to-text family's decoder writes the label as a word, `encoding.TextToTextTokenizer`).

The older BERT-only format is still read (a folder without config.json):

    encoder.keras    a saved Keras model following the reference interface:
                     inputs {token_ids, segment_ids, padding_mask} (int, [B, T]),
                     outputs {sequence_output [B, T, H], pooled_output [B, H]}
    vocab.txt        its WordPiece vocabulary, one token a line, with
                     [PAD] [UNK] [CLS] [SEP] [MASK]
    metadata.json    {"name": str, "model_family": str,
                      "pretraining_flops": number (0 if not pretrained),
                      "lowercase": bool}

Loading is safe. A preset's class comes from the family registry, never from
the folder; its config is JSON passed to that class's `from_config`, its
weights HDF5 arrays (no pickle). For the older format, the model's config.json is read first and every class in it
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
from benchmarks import encoding
from reference_impl import families, presets

ENCODER_FILE = "encoder.keras"
VOCABULARY_FILE = "vocab.txt"
METADATA_FILE = "metadata.json"
PRESET_CONFIG_FILE = "config.json"
REQUIRED_METADATA = ("name", "model_family", "pretraining_flops")  # the older format
REQUIRED_PRESET_METADATA = ("name", "pretraining_flops")
# The tokenizer class a preset's config.json may name, per tokenizer kind of the registry.
TOKENIZER_CLASSES = {"wordpiece": "WordPieceEncoder", "bpe": "BytePairEncoder", "bpe-gpt2": "BytePairEncoder",
                     "sentencepiece": "SentencePieceEncoder"}
ALLOWED_MODULES = ("keras", "keras_hub", "reference_impl")
POOLINGS = ("first", "pooled")  # metadata "pooling": how a first-token head reads the model
INPUT_NAMES = {"token_ids", "segment_ids", "padding_mask"}


class SubmissionError(ValueError):
    """A submission that cannot be benchmarked; the message says why and what to do."""


def is_preset(folder):
    """Whether `folder` is a preset submission (config.json) rather than the older encoder.keras format."""
    return os.path.exists(os.path.join(folder, PRESET_CONFIG_FILE))


def submission_hash(folder):
    """sha256 over the submission's files (names and bytes): every file of a preset, the three of the older format."""
    digest = hashlib.sha256()
    names = (sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))) if is_preset(folder)
             else (ENCODER_FILE, VOCABULARY_FILE, METADATA_FILE))
    for name in names:
        path = os.path.join(folder, name)
        digest.update(name.encode())
        if os.path.exists(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def read_metadata(folder):
    """metadata.json, checked for the keys its format needs."""
    path = os.path.join(folder, METADATA_FILE)
    required = REQUIRED_PRESET_METADATA if is_preset(folder) else REQUIRED_METADATA
    if not os.path.exists(path):
        raise SubmissionError(f"{path} is missing; add a metadata.json with {', '.join(required)}.")
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{path} is not valid JSON ({error}).") from None
    missing = [key for key in required if key not in metadata]
    if missing:
        raise SubmissionError(f"{path} lacks {missing}; see benchmarks/README.md for the format.")
    if not is_preset(folder):
        metadata.setdefault("lowercase", True)
    return metadata


def describe(folder, metadata, model):
    """The metadata runs are stored with: plus `family` (the registry's key, presets only), `model_family`
    and the model's `parameters`."""
    described = dict(metadata, parameters=model.count_params())
    family = preset_family(folder)[0] if is_preset(folder) else None
    if family is not None:
        described.update(family=family.name, model_family=family.name)
    pooling = metadata.get("pooling")
    if pooling is not None and (pooling not in POOLINGS or family is None or family.head != "first_token"):
        raise SubmissionError(
            f"{os.path.join(folder, METADATA_FILE)}: \"pooling\": {pooling!r} is not allowed here; it is "
            f"{' or '.join(map(repr, POOLINGS))}, for presets of a first-token family (bert, roberta, albert, "
            f"electra). Leave it out to use the family's default.")
    return described


def preset_family(folder):
    """The family record of a preset submission and its config.json; SubmissionError when unknown."""
    try:
        family, config = families.preset_family(folder)
    except (ValueError, FileNotFoundError) as error:  # unknown family, bad JSON, missing file
        raise SubmissionError(f"{folder}: {error}") from None
    if config.get("format") != presets.PRESET_FORMAT:
        raise SubmissionError(
            f"{folder} is a Hugging Face checkpoint, not a kit preset; convert it with "
            f"{family.backbone.__name__}.from_preset(folder).save_to_preset(submission, tokenizer)."
        )
    return family, config


def model_files(folder):
    """{file name: bytes} of what a fine-tuning job needs to rebuild the model (not the tokenizer)."""
    names = (PRESET_CONFIG_FILE, presets.WEIGHTS_FILE) if is_preset(folder) else (ENCODER_FILE,)
    files = {}
    for name in names:
        with open(os.path.join(folder, name), "rb") as handle:
            files[name] = handle.read()
    return files


def load_model(folder, sequence_length=8, dtype=None):
    """The backbone of a submission of any family, checked; `dtype` a policy such as "mixed_bfloat16"."""
    if not is_preset(folder):
        encoder = load_encoder(folder, sequence_length)
        return encoder if dtype is None else with_dtype_policy(encoder, dtype)
    family, config = preset_family(folder)
    if not os.path.exists(os.path.join(folder, presets.WEIGHTS_FILE)):
        raise SubmissionError(f"{os.path.join(folder, presets.WEIGHTS_FILE)} is missing; write the submission with "
                              f"backbone.save_to_preset(folder, tokenizer).")
    overrides = {"dtype": dtype} if dtype and "dtype" in config.get("config", {}) else {}
    try:
        model = family.backbone.from_preset(folder, **overrides)
    except Exception as error:  # a config or weights file that does not fit the family's class
        raise SubmissionError(f"{folder}: the {family.name} preset could not be loaded "
                              f"({type(error).__name__}: {error}); write it with save_to_preset.") from None
    check_finite_weights(model, folder)
    limit = model.get_config().get("max_sequence_length")
    if limit is not None and limit < sequence_length:
        raise SubmissionError(f"{folder}: the model takes at most {limit} tokens but the harness runs at sequence "
                              f"length {sequence_length}; pass --sequence-length {limit} or save a longer model.")
    return model


def load_tokenizer(folder, metadata, sequence_length, model):
    """The tokenizer of a submission (an `encoding.SubmissionTokenizer`), checked against the model.

    A tokenizer whose ids go past the model's embedding table, or files of
    another tokenizer kind than the family's, are a SubmissionError.
    """
    if not is_preset(folder):
        return encoding.PairEncoder(vocabulary_path(folder), metadata["lowercase"], sequence_length)
    family, config = preset_family(folder)
    named = config.get("tokenizer")
    if named is not None and TOKENIZER_CLASSES.get(family.tokenizer) != named:
        raise SubmissionError(f"{folder}: config.json names the tokenizer {named}, but the {family.name} family "
                              f"reads {family.tokenizer} ({TOKENIZER_CLASSES.get(family.tokenizer, 'no files')}).")
    try:
        tokenizer = encoding.preset_tokenizer(folder, family, sequence_length)
        size = tokenizer.vocabulary_size()
    except (ValueError, FileNotFoundError) as error:
        raise SubmissionError(f"{folder}: its {family.tokenizer} tokenizer could not be loaded: {error}") from None
    embedding = model.get_config().get("vocabulary_size")
    if size is not None and embedding is not None and size > embedding:
        raise SubmissionError(
            f"{folder}: the tokenizer has {size} tokens but the model's embedding has only {embedding} rows: the "
            f"tokenizer files do not belong to this model. Save the tokenizer the model was trained with "
            f"(save_to_preset(folder, tokenizer))."
        )
    return tokenizer


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
    check_finite_weights(encoder, path)
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


def check_finite_weights(model, path):
    for variable in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable.value))):
            raise SubmissionError(f"{path}: weight {variable.path} contains NaN or infinity.")


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


def save_preset_submission(folder, backbone, tokenizer, metadata):
    """Write a submission of any family: the backbone's preset (with its tokenizer's files) and metadata.json.

    `tokenizer`: the kit encoder the model was trained with (None for ELMo,
    which reads characters). `metadata`: name, pretraining_flops, optional student.
    """
    backbone.save_to_preset(folder, tokenizer)
    with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2)
    return str(folder)


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

"""Moving weights into the kit's models.

Two sources: keras-hub backbones (used to prove our models compute exactly the
same function) and Hugging Face checkpoint folders (`config.json`,
`model.safetensors`, vocabulary files), read with the `safetensors` library.
Each converter names every weight it sets; a shape mismatch raises an error
that names the weight.
"""

import numpy as np


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


# --------------------------------------------------------------------------
# keras-hub -> kit
# --------------------------------------------------------------------------


def copy_keras_hub_transformer_layer(ours, theirs):
    """keras-hub `TransformerEncoder`/`TransformerDecoder` -> our `TransformerBlock`."""
    attention = getattr(theirs, "_self_attention_layer")
    for our_dense, their_dense in (
        (ours.self_attention.query_dense, attention._query_dense),
        (ours.self_attention.key_dense, attention._key_dense),
        (ours.self_attention.value_dense, attention._value_dense),
        (ours.self_attention.output_dense, attention._output_dense),
    ):
        copy_dense(our_dense, their_dense.kernel.numpy(), their_dense.bias.numpy(),
                   their_dense.path)
    for our_norm, their_norm in (
        (ours.self_attention_layer_norm, theirs._self_attention_layer_norm),
        (ours.feedforward_layer_norm, theirs._feedforward_layer_norm),
    ):
        copy_layer_norm(our_norm, their_norm.gamma.numpy(), their_norm.beta.numpy())
    for our_dense, their_dense in (
        (ours.feedforward_intermediate_dense, theirs._feedforward_intermediate_dense),
        (ours.feedforward_output_dense, theirs._feedforward_output_dense),
    ):
        copy_dense(our_dense, their_dense.kernel.numpy(), their_dense.bias.numpy())


def copy_keras_hub_embeddings(ours, token, position, norm, segment=None):
    """keras-hub's separate embedding layers -> our `Embeddings` layer."""
    assign(ours.token_embedding.embeddings, token.embeddings.numpy())
    assign(ours.position_embedding.embeddings, position.position_embeddings.numpy())
    if segment is not None:
        assign(ours.segment_embedding.embeddings, segment.embeddings.numpy())
    copy_layer_norm(ours.layer_norm, norm.gamma.numpy(), norm.beta.numpy())


def copy_keras_hub_bert(ours, theirs):
    """keras-hub `BertBackbone` -> `reference_impl.bert.BertBackbone` (same config)."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


def copy_keras_hub_roberta(ours, theirs):
    """keras-hub `RobertaBackbone` -> `reference_impl.roberta.RobertaBackbone`."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.embeddings.token_embedding,
                              theirs.embeddings.position_embedding, theirs.embeddings_layer_norm)
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)


def copy_keras_hub_albert(ours, theirs):
    """keras-hub `AlbertBackbone` -> `reference_impl.albert.AlbertBackbone`, group by group."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    projection = theirs.embeddings_projection
    copy_dense(ours.embeddings_projection, projection.kernel.numpy(), projection.bias.numpy())
    for our_group, their_group in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        for our_block, their_block in zip(our_group, their_group, strict=True):
            copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


def copy_keras_hub_electra(ours, theirs):
    """keras-hub `ElectraBackbone` -> `reference_impl.electra.ElectraBackbone`."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    if ours.embeddings_projection is not None:
        projection = theirs.embeddings_projection
        copy_dense(ours.embeddings_projection, projection.kernel.numpy(), projection.bias.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


# --------------------------------------------------------------------------
# Hugging Face BERT, RoBERTa, ALBERT and ELECTRA -> kit
# --------------------------------------------------------------------------

#: Hugging Face `hidden_act` -> our activation names. "gelu" is the exact erf
#: GELU; "gelu_new" (ALBERT) is the tanh approximation keras-hub uses.
HUGGING_FACE_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}


class CheckpointTensors:
    """A checkpoint's tensors by Hugging Face name, read into our layers.

    Names are looked up with and without the model prefix (`bert.`, ...):
    `BertModel.save_pretrained` writes `embeddings...`, while the pretraining
    and task models write `bert.embeddings...`. Hugging Face `Linear` weights
    are [out, in]; Keras `Dense` kernels are [in, out], hence the transpose.
    """

    def __init__(self, tensors, prefix):
        self.tensors = tensors
        self.prefix = prefix

    def get(self, name):
        for key in (f"{self.prefix}.{name}", name):
            if key in self.tensors:
                return np.asarray(self.tensors[key])
        raise ValueError(
            f"The checkpoint has no tensor {name!r} (nor {self.prefix}.{name!r}). "
            f"Is it a {self.prefix} checkpoint written by transformers' save_pretrained?"
        )

    def has(self, name):
        return f"{self.prefix}.{name}" in self.tensors or name in self.tensors

    def dense(self, dense, name):
        copy_dense(dense, self.get(f"{name}.weight").T, self.get(f"{name}.bias"), name)

    def layer_norm(self, norm, name):
        copy_layer_norm(norm, self.get(f"{name}.weight"), self.get(f"{name}.bias"), name)

    def embeddings(self, ours, position_offset=0):
        """Word, position (rows from `position_offset` on) and token-type tables + LayerNorm.

        A model without segment embeddings (RoBERTa) still has a one-row
        token-type table in Hugging Face, added to every token; it is folded
        into the position table, which every token also gets exactly once.
        """
        assign(ours.token_embedding.embeddings, self.get("embeddings.word_embeddings.weight"),
               "embeddings.word_embeddings.weight")
        positions = self.get("embeddings.position_embeddings.weight")
        positions = positions[position_offset:position_offset + ours.max_sequence_length]
        token_types = self.get("embeddings.token_type_embeddings.weight")
        if ours.segment_embedding is None:
            if token_types.shape[0] != 1:
                raise ValueError(f"Expected one token type, found {token_types.shape[0]}.")
            positions = positions + token_types[0]
        else:
            assign(ours.segment_embedding.embeddings, token_types,
                   "embeddings.token_type_embeddings.weight")
        assign(ours.position_embedding.embeddings, positions, "embeddings.position_embeddings.weight")
        self.layer_norm(ours.layer_norm, "embeddings.LayerNorm")

    def bert_layer(self, block, prefix):
        """`encoder.layer.{i}` of BERT, RoBERTa and ELECTRA -> a `TransformerBlock`."""
        attention = block.self_attention
        self.dense(attention.query_dense, f"{prefix}.attention.self.query")
        self.dense(attention.key_dense, f"{prefix}.attention.self.key")
        self.dense(attention.value_dense, f"{prefix}.attention.self.value")
        self.dense(attention.output_dense, f"{prefix}.attention.output.dense")
        self.layer_norm(block.self_attention_layer_norm, f"{prefix}.attention.output.LayerNorm")
        self.dense(block.feedforward_intermediate_dense, f"{prefix}.intermediate.dense")
        self.dense(block.feedforward_output_dense, f"{prefix}.output.dense")
        self.layer_norm(block.feedforward_layer_norm, f"{prefix}.output.LayerNorm")

    def albert_layer(self, block, prefix):
        """`encoder.albert_layer_groups.{g}.albert_layers.{i}` -> a `TransformerBlock`."""
        attention = block.self_attention
        for dense, name in ((attention.query_dense, "query"), (attention.key_dense, "key"),
                            (attention.value_dense, "value"), (attention.output_dense, "dense")):
            self.dense(dense, f"{prefix}.attention.{name}")
        self.layer_norm(block.self_attention_layer_norm, f"{prefix}.attention.LayerNorm")
        self.dense(block.feedforward_intermediate_dense, f"{prefix}.ffn")
        self.dense(block.feedforward_output_dense, f"{prefix}.ffn_output")
        self.layer_norm(block.feedforward_layer_norm, f"{prefix}.full_layer_layer_norm")


def encoder_arguments(hf_config):
    """The `config.json` entries every encoder shares -> our argument names."""
    if hf_config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"Only absolute position embeddings are supported, not "
            f"{hf_config['position_embedding_type']!r}."
        )
    activation = hf_config.get("hidden_act", "gelu")
    if activation not in HUGGING_FACE_ACTIVATIONS:
        raise ValueError(
            f"Unsupported hidden_act {activation!r}; supported: {sorted(HUGGING_FACE_ACTIVATIONS)}."
        )
    return dict(
        num_layers=hf_config["num_hidden_layers"],
        num_heads=hf_config["num_attention_heads"],
        hidden_dim=hf_config["hidden_size"],
        intermediate_dim=hf_config["intermediate_size"],
        dropout=hf_config.get("hidden_dropout_prob", 0.1),
        activation=HUGGING_FACE_ACTIVATIONS[activation],
        layer_norm_epsilon=hf_config.get("layer_norm_eps", 1e-12),
    )


def bert_from_hugging_face(hf_config, tensors):
    """A checkpoint saved without the pooler (BertForMaskedLM) leaves
    `pooled_dense` at its initialisation."""
    from reference_impl.bert import BertBackbone

    backbone = BertBackbone(
        vocabulary_size=hf_config["vocab_size"],
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )
    tensors = CheckpointTensors(tensors, "bert")
    tensors.embeddings(backbone.embeddings)
    for i, block in enumerate(backbone.transformer_layers):
        tensors.bert_layer(block, f"encoder.layer.{i}")
    if tensors.has("pooler.dense.weight"):  # masked-LM-only checkpoints have no pooler
        tensors.dense(backbone.pooled_dense, "pooler.dense")
    return backbone


def roberta_from_hugging_face(hf_config, tensors):
    """RoBERTa's positions start after the padding id (<pad> = 1, so at 2):
    rows 0 and 1 of its position table are never used by a real token, and
    are sliced off. Its checkpoints' `pooler` was never trained by RoBERTa's
    objective and is not read (`pooled_output` is the <s> state here)."""
    from reference_impl.roberta import RobertaBackbone

    position_offset = hf_config.get("pad_token_id", 1) + 1
    backbone = RobertaBackbone(
        vocabulary_size=hf_config["vocab_size"],
        max_sequence_length=hf_config["max_position_embeddings"] - position_offset,
        **encoder_arguments(hf_config),
    )
    tensors = CheckpointTensors(tensors, "roberta")
    tensors.embeddings(backbone.embeddings, position_offset)
    for i, block in enumerate(backbone.transformer_layers):
        tensors.bert_layer(block, f"encoder.layer.{i}")
    return backbone


def albert_from_hugging_face(hf_config, tensors):
    from reference_impl.albert import AlbertBackbone

    backbone = AlbertBackbone(
        vocabulary_size=hf_config["vocab_size"],
        embedding_dim=hf_config["embedding_size"],
        num_groups=hf_config.get("num_hidden_groups", 1),
        num_inner_repetitions=hf_config.get("inner_group_num", 1),
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )
    tensors = CheckpointTensors(tensors, "albert")
    tensors.embeddings(backbone.embeddings)
    tensors.dense(backbone.embeddings_projection, "encoder.embedding_hidden_mapping_in")
    for g, group in enumerate(backbone.transformer_layers):
        for i, block in enumerate(group):
            tensors.albert_layer(block, f"encoder.albert_layer_groups.{g}.albert_layers.{i}")
    tensors.dense(backbone.pooled_dense, "pooler")
    return backbone


def electra_from_hugging_face(hf_config, tensors):
    """Discriminator or generator encoder. ELECTRA has no pooler, so
    `pooled_dense` keeps its initialisation (fine-tuning trains it)."""
    from reference_impl.electra import ElectraBackbone

    backbone = ElectraBackbone(
        vocabulary_size=hf_config["vocab_size"],
        embedding_dim=hf_config["embedding_size"],
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )
    tensors = CheckpointTensors(tensors, "electra")
    tensors.embeddings(backbone.embeddings)
    if backbone.embeddings_projection is not None:
        tensors.dense(backbone.embeddings_projection, "embeddings_project")
    for i, block in enumerate(backbone.transformer_layers):
        tensors.bert_layer(block, f"encoder.layer.{i}")
    return backbone


#: config.json `model_type` -> converter(config dict, tensors dict) -> backbone.
HUGGING_FACE_ENCODERS = {
    "bert": bert_from_hugging_face,
    "roberta": roberta_from_hugging_face,
    "albert": albert_from_hugging_face,
    "electra": electra_from_hugging_face,
}


def load_hugging_face(directory):
    """A Hugging Face checkpoint folder -> our backbone, chosen by `model_type`.

    Reads `config.json` and `model.safetensors` (numpy, no PyTorch needed).
    BERT, RoBERTa, ALBERT and ELECTRA give the matching backbone; GPT-2 goes
    to `load_hugging_face_gpt2`. Vocabulary files are read by
    `reference_impl.tokenizers`.
    """
    import json
    from pathlib import Path

    from safetensors.numpy import load_file

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No checkpoint folder at {directory}.")
    config_file, weights_file = directory / "config.json", directory / "model.safetensors"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{directory} has no config.json; a Hugging Face checkpoint folder needs "
            f"config.json and model.safetensors (save_pretrained writes both)."
        )
    hf_config = json.loads(config_file.read_text())
    model_type = hf_config.get("model_type")
    if model_type == "gpt2":
        return load_hugging_face_gpt2(directory)
    if model_type not in HUGGING_FACE_ENCODERS:
        raise ValueError(
            f"{config_file} has model_type {model_type!r}; supported: "
            f"{sorted(HUGGING_FACE_ENCODERS) + ['gpt2']}."
        )
    if not weights_file.is_file():
        found = sorted(p.name for p in directory.iterdir())
        raise FileNotFoundError(
            f"{directory} has no model.safetensors (found {found}). Only safetensors "
            f"weights are read; re-save a pytorch_model.bin checkpoint with "
            f"save_pretrained(..., safe_serialization=True)."
        )
    return HUGGING_FACE_ENCODERS[model_type](hf_config, load_file(weights_file))

# --------------------------------------------------------------------------
# GPT-2: keras-hub and Hugging Face -> kit
# --------------------------------------------------------------------------


def copy_keras_hub_gpt2(ours, theirs):
    """keras-hub `GPT2Backbone` -> `reference_impl.gpt.GPTBackbone` (same config)."""
    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, theirs.token_embedding.embeddings.numpy())
    assign(emb.position_embedding.embeddings, theirs.position_embedding.position_embeddings.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_layer_norm(ours.layer_norm, theirs.layer_norm.gamma.numpy(), theirs.layer_norm.beta.numpy())


def gpt2_config_from_hugging_face(hf_config):
    """A Hugging Face GPT-2 `config.json` dict -> `GPTBackbone` arguments."""
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(
            f"GPTBackbone uses the tanh-approximated GELU; this checkpoint's "
            f"activation_function is {activation!r}, which it cannot reproduce."
        )
    hidden_dim = hf_config["n_embd"]
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=hf_config["n_layer"],
        num_heads=hf_config["n_head"],
        hidden_dim=hidden_dim,
        intermediate_dim=hf_config.get("n_inner") or 4 * hidden_dim,
        max_sequence_length=hf_config["n_positions"],
        layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-5),
    )


def copy_hugging_face_gpt2(ours, tensors):
    """Hugging Face GPT-2 tensors (dict name -> array) -> `GPTBackbone`.

    GPT-2 stores its projections as `Conv1D` with kernels [in, out] (Keras's
    Dense layout, no transpose) and the query, key and value projections fused
    in `attn.c_attn` ([H, 3H], in that order), which is split in three. Names
    may carry a `transformer.` prefix (GPT2LMHeadModel); the LM head is the
    token table, so `lm_head.weight` is not read.
    """
    def get(name):
        for key in (name, f"transformer.{name}"):
            if key in tensors:
                return np.asarray(tensors[key])
        raise KeyError(f"Checkpoint has no tensor {name!r}; is this a GPT-2 checkpoint?")

    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, get("wte.weight"), "wte.weight")
    assign(emb.position_embedding.embeddings, get("wpe.weight"), "wpe.weight")
    for i, block in enumerate(ours.transformer_layers):
        prefix = f"h.{i}."
        attention = block.self_attention
        kernels = np.split(get(prefix + "attn.c_attn.weight"), 3, axis=1)
        biases = np.split(get(prefix + "attn.c_attn.bias"), 3)
        for dense, kernel, bias in zip(
            (attention.query_dense, attention.key_dense, attention.value_dense), kernels, biases
        ):
            copy_dense(dense, kernel, bias, prefix + "attn.c_attn")
        for dense, name in (
            (attention.output_dense, "attn.c_proj"),
            (block.feedforward_intermediate_dense, "mlp.c_fc"),
            (block.feedforward_output_dense, "mlp.c_proj"),
        ):
            copy_dense(dense, get(prefix + name + ".weight"), get(prefix + name + ".bias"),
                       prefix + name)
        for norm, name in ((block.self_attention_layer_norm, "ln_1"),
                           (block.feedforward_layer_norm, "ln_2")):
            copy_layer_norm(norm, get(prefix + name + ".weight"), get(prefix + name + ".bias"),
                            prefix + name)
    copy_layer_norm(ours.layer_norm, get("ln_f.weight"), get("ln_f.bias"), "ln_f")


def load_hugging_face_gpt2(directory, dropout=0.0):
    """A Hugging Face GPT-2 folder (`config.json`, `model.safetensors`) -> `GPTBackbone`."""
    import json
    from pathlib import Path

    from safetensors.numpy import load_file

    from reference_impl.gpt import GPTBackbone

    directory = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory} has no {name}; a Hugging Face GPT-2 folder needs "
                f"config.json and model.safetensors (save_pretrained writes both)."
            )
    config = gpt2_config_from_hugging_face(json.loads((directory / "config.json").read_text()))
    backbone = GPTBackbone(**config, dropout=dropout)
    copy_hugging_face_gpt2(backbone, load_file(directory / "model.safetensors"))
    return backbone

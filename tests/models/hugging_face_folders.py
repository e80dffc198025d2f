"""Hugging Face checkpoint folders written from random keras-hub backbones.

No RoBERTa, ALBERT, ELECTRA, GPT-2 or T5 checkpoint ships offline, so a folder is
written in Hugging Face's layout (names, [out, in] Linear weights, RoBERTa's
offset position table, GPT-2's fused Conv1D attention) from a keras-hub
backbone's weights; a model imported from it must reproduce keras-hub's
outputs. This checks the name mapping and layout, not pretrained numerics.
Each `*_checkpoint(folder)` returns (folder, the keras-hub backbone, inputs,
the outputs the import must reproduce).
"""

import json

import keras
import keras_hub
import numpy as np
from safetensors.numpy import save_file

from tests.models.helpers import random_encoder_decoder_inputs, random_encoder_inputs


def numpy(x):
    return keras.ops.convert_to_numpy(x)


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


def roberta_checkpoint(folder):
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
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    inputs = {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
    return (write_folder(folder, config, tensors), theirs, inputs,
            {"sequence_output": theirs(inputs)})


def albert_checkpoint(folder):
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
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    return write_folder(folder, config, tensors), theirs, inputs, theirs(inputs)


def electra_checkpoint(folder):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.ElectraBackbone(vocab_size=97, num_layers=2, num_heads=4,
                                              hidden_dim=32, embedding_dim=16, intermediate_dim=64,
                                              max_sequence_length=24)
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
    inputs = random_encoder_inputs(97, batch=3, length=16, seed=1)
    # ELECTRA checkpoints have no pooler: only the sequence output is imported.
    return (write_folder(folder, config, tensors), theirs, inputs,
            {"sequence_output": theirs(inputs)["sequence_output"]})


def hugging_face_tensors(theirs):
    """A keras-hub GPT2Backbone's weights under Hugging Face GPT-2 names and layouts."""
    tensors = {
        "wte.weight": theirs.token_embedding.embeddings.numpy(),
        "wpe.weight": theirs.position_embedding.position_embeddings.numpy(),
        "ln_f.weight": theirs.layer_norm.gamma.numpy(),
        "ln_f.bias": theirs.layer_norm.beta.numpy(),
    }
    hidden = theirs.hidden_dim
    for i, layer in enumerate(theirs.transformer_layers):
        attention = layer._self_attention_layer
        qkv = [attention._query_dense, attention._key_dense, attention._value_dense]
        p = f"h.{i}."
        tensors[p + "attn.c_attn.weight"] = np.concatenate(
            [d.kernel.numpy().reshape(hidden, hidden) for d in qkv], axis=1)
        tensors[p + "attn.c_attn.bias"] = np.concatenate([d.bias.numpy().reshape(-1) for d in qkv])
        tensors[p + "attn.c_proj.weight"] = attention._output_dense.kernel.numpy().reshape(hidden, hidden)
        tensors[p + "attn.c_proj.bias"] = attention._output_dense.bias.numpy()
        for name, dense in (("mlp.c_fc", layer._feedforward_intermediate_dense),
                            ("mlp.c_proj", layer._feedforward_output_dense)):
            tensors[p + name + ".weight"] = dense.kernel.numpy()
            tensors[p + name + ".bias"] = dense.bias.numpy()
        for name, norm in (("ln_1", layer._self_attention_layer_norm),
                           ("ln_2", layer._feedforward_layer_norm)):
            tensors[p + name + ".weight"] = norm.gamma.numpy()
            tensors[p + name + ".bias"] = norm.beta.numpy()
    return {k: np.ascontiguousarray(v, dtype="float32") for k, v in tensors.items()}


def gpt2_checkpoint(folder):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.GPT2Backbone(vocabulary_size=97, num_layers=2, num_heads=4,
                                           hidden_dim=32, intermediate_dim=64,
                                           max_sequence_length=24, dropout=0.0)
    # GPT2LMHeadModel checkpoints prefix names with "transformer.".
    tensors = {f"transformer.{k}": v for k, v in hugging_face_tensors(theirs).items()}
    config = {"model_type": "gpt2", "vocab_size": 97, "n_layer": 2, "n_head": 4, "n_embd": 32,
              "n_inner": 64, "n_positions": 24, "layer_norm_epsilon": 1e-5,
              "activation_function": "gelu_new"}
    inputs = random_encoder_inputs(97, batch=2, length=10, seed=5)
    inputs = {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
    return write_folder(folder, config, tensors), theirs, inputs, {"sequence_output": theirs(inputs)}


def xlnet_checkpoint(folder):
    """XLNet: raw [H, n, d] attention parameters, u/v/segment biases named r_w/r_r/r_s_bias."""
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.XLNetBackbone(vocabulary_size=97, num_layers=2, num_heads=4,
                                            hidden_dim=32, intermediate_dim=64)
    config = dict(model_type="xlnet", vocab_size=97, n_layer=2, n_head=4, d_model=32, d_inner=64,
                  d_head=8, ff_activation="gelu", attn_type="bi", untie_r=True, bi_data=False,
                  clamp_len=-1, layer_norm_eps=1e-12, dropout=0.1)
    tensors = {"transformer.word_embedding.weight": numpy(theirs.content_query_embedding.word_embed.embeddings),
               "transformer.mask_emb": numpy(theirs.attn_mask_layer.mask_emb)}
    for i, layer in enumerate(theirs.transformer_layers):
        prefix = f"transformer.layer.{i}."
        attention = layer.relative_attention
        for name, dense in (("q", attention._query_dense), ("k", attention._key_dense),
                            ("v", attention._value_dense), ("r", attention._encoding_dense),
                            ("o", attention._output_dense)):
            tensors[prefix + "rel_attn." + name] = numpy(dense.kernel)
        for name, weight in (("r_w_bias", layer.content_attention_bias),
                             ("r_r_bias", layer.positional_attention_bias),
                             ("r_s_bias", layer.segment_attention_bias), ("seg_embed", layer.segment_encoding)):
            tensors[prefix + "rel_attn." + name] = numpy(weight)
        layer_norm(tensors, prefix + "rel_attn.layer_norm", layer.layer_norm)
        linear(tensors, prefix + "ff.layer_1", layer.feedforward_intermediate_dense)
        linear(tensors, prefix + "ff.layer_2", layer.feedforward_output_dense)
        layer_norm(tensors, prefix + "ff.layer_norm", layer.layer_norm_ff)
    # One padded row: keras-hub 0.32's XLNet mixes the rows of a larger batch.
    inputs = {name: value[1:2] for name, value in random_encoder_inputs(97, batch=3, length=12, seed=1).items()}
    return write_folder(folder, config, tensors), theirs, inputs, {"sequence_output": theirs(inputs)}


def t5_tensors(theirs):
    """A keras-hub T5Backbone's weights under Hugging Face T5 names (no biases; gated
    feed-forward `wi_0`, `wi_1`; untied `lm_head`)."""
    tensors = {"shared.weight": numpy(theirs.token_embedding.embeddings),
               "lm_head.weight": numpy(theirs.token_embedding.reverse_embeddings).T}

    def weight(name, dense):
        tensors[f"{name}.weight"] = numpy(dense.kernel).T

    for stack in ("encoder", "decoder"):
        layers = getattr(theirs, f"{stack}_transformer_layers")
        tensors[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = numpy(
            layers[0].self_attention.relative_attention_bias)
        for i, layer in enumerate(layers):
            prefix = f"{stack}.block.{i}.layer"
            sublayers = [("0.SelfAttention", layer.self_attention, layer.self_attention_layer_norm)]
            if stack == "decoder":
                sublayers.append(("1.EncDecAttention", layer.cross_attention,
                                  layer.cross_attention_layer_norm))
            for name, attention, norm in sublayers:
                for projection, dense in (("q", attention.query_projector), ("k", attention.key_projector),
                                          ("v", attention.value_projector),
                                          ("o", attention.output_projector)):
                    weight(f"{prefix}.{name}.{projection}", dense)
                tensors[f"{prefix}.{name.split('.')[0]}.layer_norm.weight"] = numpy(norm.weight)
            feedforward = f"{prefix}.{len(sublayers)}"
            weight(f"{feedforward}.DenseReluDense.wi_0", layer.input_projector)
            weight(f"{feedforward}.DenseReluDense.wi_1", layer.gate_projector)
            weight(f"{feedforward}.DenseReluDense.wo", layer.output_projector)
            tensors[f"{feedforward}.layer_norm.weight"] = numpy(layer.layer_norm.weight)
        tensors[f"{stack}.final_layer_norm.weight"] = numpy(getattr(theirs, f"{stack}_layer_norm").weight)
    return {k: np.ascontiguousarray(v, dtype="float32") for k, v in tensors.items()}


def t5_checkpoint(folder):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.T5Backbone(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32,
                                         intermediate_dim=64, key_value_dim=16,
                                         tie_embedding_weights=False)
    config = {"model_type": "t5", "vocab_size": 97, "d_model": 32, "d_kv": 16, "d_ff": 64,
              "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
              "feed_forward_proj": "gated-relu", "tie_word_embeddings": False,
              "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
              "dropout_rate": 0.1, "layer_norm_epsilon": 1e-6}
    inputs = random_encoder_decoder_inputs(97, batch=3, encoder_length=16, decoder_length=10, seed=1)
    return write_folder(folder, config, t5_tensors(theirs)), theirs, inputs, theirs(inputs)


#: family -> the function writing a checkpoint of it.
CHECKPOINTS = {"roberta": roberta_checkpoint, "albert": albert_checkpoint,
               "electra": electra_checkpoint, "gpt": gpt2_checkpoint, "xlnet": xlnet_checkpoint,
               "t5": t5_checkpoint}

"""T5: keras-hub parity, relative position buckets, cached decoding, Hugging Face import."""

import json

import keras
import keras_hub
import numpy as np
import pytest
from keras_hub.src.models.t5.t5_multi_head_attention import T5MultiHeadAttention

from reference_impl.families import load_hugging_face
from reference_impl.t5 import (
    T5Backbone,
    T5LayerNorm,
    T5Seq2SeqLM,
    generate,
    relative_position_bucket,
)
from tests.models.helpers import random_encoder_decoder_inputs
from tests.models.hugging_face_folders import t5_checkpoint
from tests.models.parity import copy_keras_hub_t5, max_abs_error

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32, intermediate_dim=64)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def inputs(seed=1, batch=3, encoder_length=16, decoder_length=10):
    return random_encoder_decoder_inputs(97, batch, encoder_length, decoder_length, seed)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 40)])
def test_relative_position_buckets_equal_keras_hubs(bidirectional, num_buckets, max_distance):
    relative = np.arange(-300, 301, dtype="int32")
    ours = numpy(relative_position_bucket(relative, bidirectional, num_buckets, max_distance))
    theirs = numpy(T5MultiHeadAttention._relative_position_bucket(
        keras.ops.convert_to_tensor(relative), bidirectional, num_buckets, max_distance))
    np.testing.assert_array_equal(ours, theirs)
    # Near distances get buckets of their own, far ones share; +-300 reaches every bucket
    # (but the forward half's distance 0: distance 0 counts as backwards).
    assert len(set(ours.tolist())) == num_buckets - bidirectional
    assert len(set(ours[relative < -max_distance].tolist())) == 1  # all beyond: one bucket
    if not bidirectional:
        assert (ours[relative > 0] == 0).all()  # later keys: the causal mask hides them


def test_rms_layer_norm_has_no_centring_and_no_bias():
    x = np.array([[3.0, 4.0, 0.0, 0.0]], "float32")
    norm = T5LayerNorm(epsilon=0.0)
    # sqrt(mean([9, 16, 0, 0])) = 2.5: the mean (1.75) is not subtracted.
    np.testing.assert_allclose(numpy(norm(x)), x / 2.5, rtol=1e-6)
    assert [w.name for w in norm.weights] == ["weight"]


@pytest.mark.parametrize("variant", [
    dict(),  # keras-hub's default: gated ReLU, tied embeddings
    dict(use_gated_activation=False, activation="gelu", tie_embedding_weights=False,
         key_value_dim=16),  # the plain network, untied, heads wider than hidden_dim / h
])
def test_matches_keras_hub_t5_backbone_after_copying_weights(variant):
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.T5Backbone(**CONFIG, **variant)
    ours = T5Backbone(**CONFIG, **variant)
    copy_keras_hub_t5(ours, theirs)
    batch = inputs()
    assert batch["encoder_padding_mask"].min() == 0 and batch["decoder_padding_mask"].min() == 0
    expected, got = theirs(batch), ours(batch)
    for name in ("encoder_sequence_output", "decoder_sequence_output"):
        assert max_abs_error(got[name], expected[name]) < 1e-5, name


def test_parameter_counts_equal_keras_hub():
    assert T5Backbone(**CONFIG).count_params() == keras_hub.models.T5Backbone(**CONFIG).count_params()
    # T5-base: keras_hub.models.T5Backbone(**T5Backbone.sizes["base"]) also counts
    # 222,903,552 (Hugging Face's t5-base too); building it here would take a minute.
    assert T5Backbone.from_name("base").count_params() == 222_903_552


MODEL = None


def seq2seq_model():
    global MODEL
    if MODEL is None:
        keras.utils.set_random_seed(0)
        MODEL = T5Seq2SeqLM(T5Backbone(**CONFIG, dropout=0.0))
    return MODEL


def test_decoder_is_causal_and_ignores_padding():
    model = seq2seq_model()
    batch = inputs(seed=3, batch=2)
    batch["decoder_padding_mask"][:] = 1
    before = numpy(model(batch))
    changed = {k: v.copy() for k, v in batch.items()}
    changed["decoder_token_ids"][:, 6:] = 7
    after = numpy(model(changed))
    np.testing.assert_allclose(after[:, :6], before[:, :6], atol=1e-6)
    assert np.abs(after[:, 6:] - before[:, 6:]).max() > 1e-3
    # Encoder padding: what sits in padded positions never matters.
    changed = {k: v.copy() for k, v in batch.items()}
    changed["encoder_token_ids"][batch["encoder_padding_mask"] == 0] = 5
    np.testing.assert_allclose(numpy(model(changed)), before, atol=1e-6)


def test_cached_greedy_decoding_equals_decoding_without_the_cache():
    model = seq2seq_model()
    batch = inputs(seed=4, batch=3)
    args = (batch["encoder_token_ids"], batch["encoder_padding_mask"])
    # No end token in a random model's way: every row decodes all 7 positions.
    cached, cached_logits = generate(model, *args, max_length=7, end_token_id=-1)
    plain, plain_logits = generate(model, *args, max_length=7, end_token_id=-1, use_cache=False)
    np.testing.assert_array_equal(cached, plain)
    np.testing.assert_allclose(cached_logits, plain_logits, atol=1e-5)
    assert cached_logits.shape == (3, 6, 97)
    # The decoded tokens are what the full model picks at each position (teacher forcing).
    full = numpy(model({**dict(zip(("encoder_token_ids", "encoder_padding_mask"), args)),
                        "decoder_token_ids": cached[:, :-1],
                        "decoder_padding_mask": np.ones_like(cached[:, :-1])}))
    np.testing.assert_array_equal(full.argmax(-1), cached[:, 1:])


def test_generation_stops_a_row_after_its_end_token():
    model = seq2seq_model()
    batch = inputs(seed=4, batch=3)
    args = (batch["encoder_token_ids"], batch["encoder_padding_mask"])
    free, _ = generate(model, *args, max_length=8, end_token_id=-1)
    end = int(free[0, 2])  # the token row 0 writes second becomes the end token
    stopped, _ = generate(model, *args, max_length=8, end_token_id=end)
    first_end = 1 + int(np.argmax(stopped[0, 1:] == end))  # position 0 is the start token
    assert first_end <= 2 and (stopped[0, first_end + 1:] == 0).all()


def test_seq2seq_lm_keras_file_round_trip(tmp_path):
    model = seq2seq_model()
    batch = inputs(seed=6)
    model.save(tmp_path / "t5.keras")
    restored = keras.saving.load_model(tmp_path / "t5.keras", safe_mode=True)
    np.testing.assert_allclose(numpy(restored(batch)), numpy(model(batch)), atol=1e-6)


def test_hugging_face_t5_folder_imports(tmp_path):
    """Gated feed-forward, untied lm_head, heads of width d_kv != d_model / h."""
    folder, theirs, batch, expected = t5_checkpoint(tmp_path / "t5")
    ours = load_hugging_face(folder)
    assert isinstance(ours, T5Backbone)
    config = ours.get_config()
    assert (config["key_value_dim"], config["use_gated_activation"],
            config["tie_embedding_weights"]) == (16, True, False)
    got = ours(batch)
    for name in ("encoder_sequence_output", "decoder_sequence_output"):
        assert max_abs_error(got[name], expected[name]) < 1e-5, name
    np.testing.assert_array_equal(numpy(ours.token_embedding.reverse_embeddings),
                                  numpy(theirs.token_embedding.reverse_embeddings))


def test_hugging_face_t5_config_errors_name_the_problem(tmp_path):
    folder, _, _, _ = t5_checkpoint(tmp_path / "t5")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_decoder_layers": 3}))
    with pytest.raises(ValueError, match="as many decoder layers.*2 and 3"):
        load_hugging_face(folder)
    (folder / "config.json").write_text(json.dumps({**config, "feed_forward_proj": "swish"}))
    with pytest.raises(ValueError, match="feed_forward_proj 'swish'"):
        load_hugging_face(folder)
    (folder / "config.json").write_text(json.dumps({**config, "feed_forward_proj": "relu"}))
    with pytest.raises(ValueError, match="no tensor '.*DenseReluDense.wi.weight'"):
        load_hugging_face(folder)

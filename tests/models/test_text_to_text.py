"""Text-to-text fine-tuning on real SST-2 lines: formats, teacher-forcing arrays, training, decoding."""

from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks.tasks import read_split
from reference_impl.gpt import compile_causal_lm
from reference_impl.t5 import T5Backbone, T5Seq2SeqLM
from reference_impl.text_to_text import (
    glue_as_text,
    label_accuracy,
    predict_texts,
    seq2seq_arrays,
)
from reference_impl.tokenizers import train_sentence_piece_encoder

pytestmark = pytest.mark.backend

GLUE_DIR = Path(__file__).resolve().parents[3] / "shared" / "glue_data"


def sst2_lines(count):
    """The first `count` SST-2 training sentences with 3 or more words, and their labels."""
    train = read_split(GLUE_DIR, "SST-2", "train")
    rows = [i for i, (text,) in enumerate(train.texts) if len(text.split()) >= 3][:count]
    return [train.texts[i] for i in rows], train.labels[rows]


def test_glue_tasks_read_as_text():
    inputs, targets = glue_as_text("SST-2", [("a gripping film ",)], [1])
    assert (inputs, targets) == (["sst2 sentence: a gripping film"], ["positive"])
    inputs, targets = glue_as_text("RTE", [("It rains.", "It is wet.")], [0])
    assert (inputs, targets) == (["rte sentence1: It rains. sentence2: It is wet."], ["entailment"])
    with pytest.raises(ValueError, match="No text-to-text format for 'WNLI'"):
        glue_as_text("WNLI", [("a", "b")], [0])


@pytest.mark.training
def test_sst2_as_text_to_text_trains_and_decodes_label_words():
    # Seed first: under TensorFlow, seeding clears the op caches that hold the sentencepiece model.
    keras.utils.set_random_seed(0)
    texts, labels = sst2_lines(256)
    assert 0.3 < labels.mean() < 0.7  # both labels present
    inputs, targets = glue_as_text("SST-2", texts, labels)
    encoder = train_sentence_piece_encoder(inputs + targets, vocabulary_size=400, sequence_length=32)
    x, y, weights = seq2seq_arrays(encoder, inputs, targets, input_length=32, target_length=4)
    # Teacher forcing: the decoder reads [start] + target, shifted right by one.
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 1:][weights[:, :-1] == 1],
                                  y[:, :-1][weights[:, :-1] == 1])
    assert (x["decoder_token_ids"][:, 0] == encoder.pad_token_id).all()
    assert (y[np.arange(len(y)), weights.sum(1).astype(int) - 1] == encoder.sep_token_id).all()

    model = T5Seq2SeqLM(T5Backbone(vocabulary_size=encoder.vocabulary_size, num_layers=2, num_heads=2,
                                   hidden_dim=32, intermediate_dim=64, dropout=0.0))
    compile_causal_lm(model, learning_rate=3e-3, jit_compile=keras.backend.backend() != "tensorflow")
    before = model.evaluate(x, y, sample_weight=weights, verbose=0)
    model.fit(x, y, sample_weight=weights, batch_size=32, epochs=6, verbose=0)
    after = model.evaluate(x, y, sample_weight=weights, verbose=0)
    assert after < 0.5 * before, (before, after)

    answers = predict_texts(model, encoder, inputs[:64], input_length=32, max_length=4)
    # Greedy decoding writes label words: what it learned to write.
    assert np.mean([a in ("negative", "positive") for a in answers]) > 0.9, answers[:8]


def test_label_accuracy_counts_exact_label_words():
    assert label_accuracy(["positive", "positive.", "negative"], ["positive", "positive", "positive"]) == 1 / 3

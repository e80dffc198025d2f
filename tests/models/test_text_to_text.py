"""Text-to-text fine-tuning on real SST-2 lines: formats, teacher-forcing arrays, training, decoding, reading answers."""

from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks.tasks import TASKS, read_split
from reference_impl.gpt import compile_causal_lm
from reference_impl.t5 import T5Backbone, T5Seq2SeqLM
from reference_impl.text_to_text import (
    NO_LABEL,
    STSB_FALLBACK,
    TASK_FORMATS,
    answer_texts,
    glue_as_text,
    label_accuracy,
    predict_texts,
    read_answers,
    seq2seq_arrays,
    target_length,
    target_texts,
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
    # T5 writes MNLI's hypothesis first; AX is read as MNLI, whose model answers it.
    for task in ("MNLI-m", "AX"):
        inputs, targets = glue_as_text(task, [("It rains.", "It is wet.")], [0])
        assert (inputs, targets) == (["mnli hypothesis: It is wet. premise: It rains."], ["contradiction"])
    inputs, targets = glue_as_text("STS-B", [("A dog runs.", "A dog sleeps.")] * 4, [0.0, 3.84, 3.9, 5.0])
    assert targets == ["0.0", "3.8", "4.0", "5.0"]  # the nearest 0.2, one decimal
    assert glue_as_text("CoLA", [("Books were read.",)]) == (["cola sentence: Books were read."], None)
    # Every task of the harness has a format.
    assert set(TASK_FORMATS) == set(TASKS)
    with pytest.raises(ValueError, match="No text-to-text format for 'SQuAD'"):
        glue_as_text("SQuAD", [("a", "b")], [0])


@pytest.fixture(scope="module")
def t5_encoder():
    """T5's SentencePiece layout, trained on sentences and every task's targets."""
    texts, _ = sst2_lines(200)
    targets = [target for task in TASK_FORMATS for target in target_texts(task)]
    return train_sentence_piece_encoder([t for (t,) in texts] + targets, vocabulary_size=300, sequence_length=32,
                                        packing="t5")


def test_targets_are_read_back_as_the_labels_they_write(t5_encoder):
    """Each label word (STS-B: each score, rounded) written as the decoder is trained to write it,
    target tokens + the end token + padding, reads back as the label."""
    for task, (_, label_words) in TASK_FORMATS.items():
        labels = (np.arange(len(label_words)) if label_words is not None
                  else np.array([0.0, 0.3, 1.9, 2.62, 4.15, 5.0]))
        inputs, targets = glue_as_text(task, [("One text.", "Another text.")] * len(labels), labels)
        length = target_length(t5_encoder, task)
        _, written, _ = seq2seq_arrays(t5_encoder, inputs, targets, input_length=32, target_length=length + 2)
        assert (written[:, -2:] == t5_encoder.pad_token_id).all()  # the answer's length leaves room to spare
        read = read_answers(task, answer_texts(t5_encoder, written))
        expected = labels if label_words is not None else np.round(labels * 5) / 5
        np.testing.assert_allclose(read, expected, err_msg=task)
    # An id past the tokenizer's pieces (a model's embedding may be larger, as T5's is) is no label word.
    (positive,) = t5_encoder.tokenize(["positive"])
    sentinel = t5_encoder.vocabulary_size + 27
    answers = answer_texts(t5_encoder, [positive + [sentinel, t5_encoder.sep_token_id], [sentinel]])
    np.testing.assert_array_equal(read_answers("SST-2", answers), [NO_LABEL, NO_LABEL])


def test_answers_that_are_no_label_word_or_number_are_told_apart():
    answers = ["entailment", "not_entailment", "not entailment", "Entailment", "", "entailment."]
    np.testing.assert_array_equal(read_answers("RTE", answers), [0, 1] + [NO_LABEL] * 4)
    np.testing.assert_array_equal(read_answers("STS-B", ["3.8", "0", "three", "nan", "inf", "3.8.1", ""]),
                                  [3.8, 0.0] + [STSB_FALLBACK] * 5)


def test_a_tokenizer_that_cannot_write_a_label_word_is_refused(t5_encoder):
    texts, _ = sst2_lines(200)
    encoder = train_sentence_piece_encoder([t for (t,) in texts], vocabulary_size=300, sequence_length=32,
                                           packing="t5")  # SST-2 sentences have no "_"
    assert target_length(encoder, "SST-2") > 1  # "negative", "positive": letters it has
    with pytest.raises(ValueError, match=r"cannot write the MRPC targets \['not_equivalent'\] \(they read back as"):
        target_length(encoder, "MRPC")


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

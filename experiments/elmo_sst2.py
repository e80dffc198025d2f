"""Frozen ELMo features for sentiment: SST-2 accuracy against the majority-class baseline.

1. Pretrain a small biLM (`ELMoBiLM`) on the kit's offline corpus plus
   unlabelled SST-2 training sentences (the ELMo paper's domain step, §3.4:
   the biLM is fine-tuned on the task's text, never on its labels; the
   offline corpus alone is Python documentation, with few movie-review words).
   The softmax bias starts at the words' log frequencies, and batches group
   sentences of similar length (`LengthBatches`).
2. Freeze it; train a scalar mix + bidirectional-LSTM classifier on a subset
   of the SST-2 training set. The same classifier is also trained on an
   untrained biLM of the same shape, to show what pretraining adds.
3. Report accuracy on the full SST-2 dev set (872 sentences) next to the
   accuracy of always predicting the training subset's most frequent label.

Usage: python -m experiments.elmo_sst2 [--train-examples 16000] [--pretrain-epochs 2]
       [--domain-sentences 20000] [--epochs 4]
Data: SST-2 through the GLUE harness's reader (`benchmarks.tasks`): --glue-dir, default
$GLUE_DIR or ../shared/glue_data; a Hugging Face cache works too (--glue-dir hf).
"""

import argparse
import time

import keras
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score

from benchmarks import tasks
from reference_impl.corpus import offline_corpus, split_sentences
from reference_impl.elmo import (
    ELMoBiLM,
    ELMoClassifier,
    ELMoPretrainer,
    LengthBatches,
    build_word_vocabulary,
    character_ids,
    compile_elmo_pretraining,
    language_model_targets,
    split_words,
    word_ids,
)


def read_sst2(glue_dir, split):
    """SST-2 sentences as word lists, and their labels."""
    examples = tasks.read_split(glue_dir, "SST-2", split)
    return [split_words(sentence) for (sentence,) in examples.texts], examples.labels


def offline_sentences():
    """The offline corpus (`reference_impl.corpus`) as word lists, one per sentence."""
    sentences = [split_words(s) for d in offline_corpus() for s in split_sentences(d)]
    return [s for s in sentences if s]


def pretrain_bilm(size, epochs, max_tokens, console, domain_sentences=(), corpus_sentences=None, jit_compile="auto"):
    """The biLM pretrained on `corpus_sentences` (default: the whole offline corpus) and `domain_sentences`."""
    corpus_sentences = offline_sentences() if corpus_sentences is None else corpus_sentences
    sentences = [s[: max_tokens - 2] for s in [*corpus_sentences, *domain_sentences] if s]
    vocabulary = build_word_vocabulary(sentences, vocabulary_size=4000)
    x = {"character_ids": character_ids(sentences, max_tokens)}
    ids = word_ids(sentences, vocabulary, max_tokens)
    y, weights = language_model_targets(ids)
    keras.utils.set_random_seed(0)
    pretrainer = ELMoPretrainer(ELMoBiLM.from_name(size), len(vocabulary))
    pretrainer.set_unigram_softmax_bias(ids)
    compile_elmo_pretraining(pretrainer, jit_compile=jit_compile)
    lengths = [len(s) + 2 for s in sentences]
    before = pretrainer.evaluate(LengthBatches(x, lengths, 128, y, weights), verbose=0)[0]
    history = pretrainer.fit(LengthBatches(x, lengths, 64, y, weights), epochs=epochs, verbose=0)
    after = history.history["loss"][-1]
    console.print(f"biLM pretraining on {len(sentences)} sentences: loss {before:.3f} -> {after:.3f}"
                  f" (mean of both directions, nats per word)")
    return pretrainer.bilm


def train_classifier(bilm, sentences, labels, dev_sentences, epochs, max_tokens, seed, jit_compile="auto"):
    """Scalar mix + BiLSTM on the frozen `bilm`: dev predictions, last epoch's train accuracy, seconds, model."""
    keras.utils.set_random_seed(seed)
    classifier = ELMoClassifier(bilm, num_classes=2)
    classifier.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=jit_compile,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start = time.perf_counter()
    batches = LengthBatches({"character_ids": character_ids(sentences, max_tokens)},
                            [len(s) + 2 for s in sentences], 32, labels, seed=seed)
    history = classifier.fit(batches, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    logits = classifier.predict({"character_ids": character_ids(dev_sentences, max_tokens)},
                                batch_size=128, verbose=0)
    return logits.argmax(axis=-1), history.history["accuracy"][-1], seconds, classifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue-dir", default=tasks.DEFAULT_GLUE_DIR)
    parser.add_argument("--size", default="small", choices=sorted(ELMoBiLM.sizes))
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--train-examples", type=int, default=16000)
    parser.add_argument("--domain-sentences", type=int, default=20000,
                        help="unlabelled SST-2 training sentences added to the biLM's pretraining text")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console(width=120)

    try:
        all_sentences, all_labels = read_sst2(args.glue_dir, "train")
        dev_sentences, dev_labels = read_sst2(args.glue_dir, "dev")
    except tasks.GlueDataError as error:
        raise SystemExit(f"error: {error}") from None
    subset = np.random.default_rng(args.seed).permutation(len(all_labels))[: args.train_examples]
    train_sentences = [all_sentences[i] for i in subset]
    train_labels = all_labels[subset]

    # Unlabelled domain text: training sentences outside the classifier's subset.
    unlabelled = np.random.default_rng(args.seed).permutation(len(all_sentences))
    labelled = set(subset.tolist())
    domain = [all_sentences[i] for i in unlabelled if i not in labelled][: args.domain_sentences]
    start = time.perf_counter()
    bilm = pretrain_bilm(args.size, args.pretrain_epochs, args.max_tokens, console, domain)
    pretrain_seconds = time.perf_counter() - start

    majority = np.bincount(train_labels).argmax()
    table = Table(title=f"SST-2 dev accuracy ({len(dev_labels)} sentences); "
                        f"{len(train_labels)} training sentences")
    for column in ("model", "dev accuracy", "train accuracy (last epoch)", "train time (s)"):
        table.add_column(column)
    table.add_row(f"majority class (label {majority})",
                  f"{accuracy_score(dev_labels, np.full_like(dev_labels, majority)):.4f}",
                  f"{np.mean(train_labels == majority):.4f}", "0")
    # The same classifier on an untrained biLM of the same shape: what pretraining adds
    # over random character-CNN and LSTM features.
    keras.utils.set_random_seed(args.seed)
    for name, frozen, pretrain_time in ((f"frozen ELMo ({args.size}, pretrained)", bilm, pretrain_seconds),
                                        (f"frozen untrained biLM ({args.size})", ELMoBiLM.from_name(args.size), 0)):
        predictions, train_accuracy, seconds, classifier = train_classifier(
            frozen, train_sentences, train_labels, dev_sentences, args.epochs, args.max_tokens, args.seed)
        table.add_row(f"{name} + scalar mix + BiLSTM", f"{accuracy_score(dev_labels, predictions):.4f}",
                      f"{train_accuracy:.4f}", f"{pretrain_time:.0f} pretrain + {seconds:.0f} classifier")
        console.print(f"{name}: mixing weights "
                      f"{np.round(keras.ops.convert_to_numpy(classifier.scalar_mix.mixing_weights()), 3)}, "
                      f"gamma {float(keras.ops.convert_to_numpy(classifier.scalar_mix.gamma)):.3f}")
    console.print(table)
    console.print(f"backend: {keras.backend.backend()}")


if __name__ == "__main__":
    main()

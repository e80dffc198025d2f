"""Static word vectors on the offline corpus: nearest neighbours, analogies, and ELMo's contrast.

Trains skip-gram with negative sampling (`reference_impl.word_vectors`) on
the CPython Language Reference prose (lower-cased words and punctuation seen
at least 5 times), then prints each probe word's nearest neighbours by
cosine, a few analogies (a - b + c), and the cosine between one word's
vectors in two sentences: skip-gram's (static) against an ELMo biLM's
layers. The biLM is untrained (`tiny`): the contrast is in the
architecture (a token layer that sees one word, LSTM layers that see the
sentence), not in what it learned. The 1-of-N baseline needs no table:
every two different words have cosine 0.

Usage: python -m experiments.word_vectors [--epochs 3] [--dim 50]
"""

import argparse

import keras
from rich.console import Console
from rich.table import Table

from reference_impl.corpus import offline_corpus
from reference_impl.elmo import ELMoBiLM
from reference_impl.word_vectors import (
    SkipGram,
    WordVocabulary,
    analogy,
    compile_skip_gram,
    corpus_sentences,
    nearest_neighbours,
    skip_gram_examples,
    static_and_contextual_similarity,
)

PROBES = ("true", "integer", "exception", "string", "loop", "class")
ANALOGIES = (("integer", "int", "str"), ("classes", "class", "function"), ("false", "true", "no"))
SENTENCES = ("the value of the loop variable is unchanged",
             "a return statement leaves the value on the stack")


def main(epochs=3, dim=50, seed=0):
    console = Console()
    keras.utils.set_random_seed(seed)
    sentences = corpus_sentences(offline_corpus())
    vocabulary = WordVocabulary(sentences, min_count=5)
    x, y = skip_gram_examples(vocabulary.ids(sentences), vocabulary, window=5, num_negative=5, seed=seed)
    model = compile_skip_gram(SkipGram(len(vocabulary), dim))
    history = model.fit(x, y, batch_size=1024, epochs=epochs, verbose=0)
    console.print(f"{len(vocabulary):,} words, {len(y):,} (centre, context) pairs; "
                  f"loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}")
    vectors = model.word_vectors()

    table = Table(title="Nearest neighbours (cosine)")
    table.add_column("word")
    table.add_column("neighbours")
    for word in PROBES:
        table.add_row(word, ", ".join(f"{w} {s:.2f}" for w, s in nearest_neighbours(vectors, vocabulary, word)))
    console.print(table)

    table = Table(title="Analogies: a - b + c")
    for column in ("a", "b", "c", "nearest"):
        table.add_column(column)
    for a, b, c in ANALOGIES:
        if all(w in vocabulary.index for w in (a, b, c)):
            table.add_row(a, b, c, ", ".join(w for w, _ in analogy(vectors, vocabulary, a, b, c, k=3)))
    console.print(table)

    first, second = (s.split() for s in SENTENCES)
    similarity = static_and_contextual_similarity("value", first, second, vectors, vocabulary,
                                                  ELMoBiLM.from_name("tiny", dropout=0.0))
    console.print(f"'value' in \"{SENTENCES[0]}\" and in \"{SENTENCES[1]}\":")
    table = Table(title="cosine of its two vectors")
    table.add_column("vectors")
    table.add_column("cosine", justify="right")
    for name, value in similarity.items():
        table.add_row(name, f"{value:.3f}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dim", type=int, default=50)
    args = parser.parse_args()
    main(args.epochs, args.dim)

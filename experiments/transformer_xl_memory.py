"""Transformer-XL's memory on held-out text: perplexity with and without it, same segment length.

Trains a tiny `TransformerXLBackbone` on the offline corpus (the CPython
Language Reference prose; a tenth of the documents held out) as Transformer-XL
trains: the text is cut into segments of T tokens, and each segment attends
to the previous segments' hidden states (memory M, under stop_gradient).
Then it reads the held-out text segment by segment twice: with the memory,
and without it (each segment alone, as a vanilla decoder trained on
T-token segments). Targets and segments are the same; only the memory
differs. Documents are joined with GPT-2's <|endoftext|> into one stream.
The last column scores only the first quarter of each segment's positions,
where a segment read alone has least context and the memory helps most.

Usage: python -m experiments.transformer_xl_memory [--segment-length 32]
       [--memory-length 64] [--epochs 10]
"""

import argparse
import time

import keras
import numpy as np
from rich.console import Console
from rich.table import Table

from reference_impl.corpus import offline_corpus, train_validation_split
from reference_impl.gpt import compile_causal_lm
from reference_impl.quick_pretraining import tokenized_documents
from reference_impl.tokenizers import train_byte_pair_encoder
from reference_impl.transformer_xl import (
    TransformerXLBackbone,
    TransformerXLCausalLM,
    segment_batches,
    segment_perplexity,
)


def token_stream(documents, encoder):
    """All documents as one id stream, each opened by <|endoftext|>."""
    stream = []
    for document in tokenized_documents(documents, encoder, sentence_prefix=" "):
        stream.append(encoder.sep_token_id)
        for sentence in document:
            stream.extend(sentence)
    return np.array(stream, "int32")


def main(segment_length=32, memory_length=64, epochs=10, segments_per_example=4, batch_size=16,
         vocabulary_size=1000, seed=0):
    console = Console()
    keras.utils.set_random_seed(seed)
    train_documents, heldout_documents = train_validation_split(offline_corpus(), 0.1, seed)
    encoder = train_byte_pair_encoder(train_documents, vocabulary_size, segment_length, packing="gpt2")
    train, heldout = token_stream(train_documents, encoder), token_stream(heldout_documents, encoder)
    backbone = TransformerXLBackbone.from_name("tiny", vocabulary_size=encoder.vocabulary_size,
                                               memory_length=memory_length)
    model = TransformerXLCausalLM(backbone, segment_length=segment_length)
    x, y = segment_batches(train, segment_length, segments_per_example)
    steps = epochs * -(-len(y) // batch_size)
    compile_causal_lm(model, learning_rate=2e-3, warmup_steps=steps // 10, total_steps=steps,
                      jit_compile=False)
    console.print(f"{len(train):,} training tokens, {len(heldout):,} held out; "
                  f"{backbone.count_params():,} parameters; {steps} steps")
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - start

    table = Table(title=f"Held-out perplexity, segment length {segment_length} "
                        f"(trained {seconds:.0f} s)")
    first = segment_length // 4
    for column in ("evaluation", "memory (tokens per layer)", "perplexity",
                   f"first {first} tokens of each segment"):
        table.add_column(column, justify="left" if column == "evaluation" else "right")
    for name, use_memory in (("without memory", False), ("with memory", True)):
        values = [segment_perplexity(backbone, heldout, segment_length, use_memory=use_memory,
                                     num_streams=16, positions=positions)
                  for positions in (slice(None), slice(0, first))]
        table.add_row(name, str(memory_length if use_memory else 0), *(f"{v:.2f}" for v in values))
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment-length", type=int, default=32)
    parser.add_argument("--memory-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    main(args.segment_length, args.memory_length, args.epochs)

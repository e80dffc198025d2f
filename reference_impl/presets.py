"""Named sizes and presets: building a model by size, loading and saving checkpoints.

keras-hub's names, keras-hub's meaning: a *preset* is a checkpoint folder,
loaded with `from_preset`. A model's *sizes* are architectures only (no
weights), built with `from_name`.

`from_preset(folder)` accepts
- a Hugging Face checkpoint folder (`config.json` with a `model_type`, and
  `model.safetensors` or its shards), converted by `reference_impl.checkpoints`;
- a kit preset folder, written by `save_to_preset`:

      config.json          {"format": "reference_impl.preset", "family": "bert",
                            "class": "BertBackbone", "config": {...get_config()...},
                            "tokenizer": "WordPieceEncoder"}
      model.weights.h5     the weights (Keras's `save_weights`)
      vocab.txt, ...       the tokenizer's files, when one was passed (`encoder.save`)

Loading is safe: the class comes from the family registry, never from the
folder; the config is plain JSON passed to that class's `from_config`; the
weights are HDF5 arrays. No code or pickle in the folder runs.
"""

import importlib
import json
from pathlib import Path

PRESET_FORMAT = "reference_impl.preset"
WEIGHTS_FILE = "model.weights.h5"


def read_preset_config(preset):
    """The `config.json` of a preset folder (kit or Hugging Face)."""
    folder = Path(preset)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a preset folder: it has no config.json. Pass a Hugging Face "
            f"checkpoint folder (save_pretrained) or a folder written by save_to_preset."
        )
    return json.loads((folder / "config.json").read_text())


def preset_family(preset):
    """The model family a preset folder holds, and its config.json."""
    from reference_impl.families import FAMILIES, hugging_face_family

    config = read_preset_config(preset)
    if config.get("format") == PRESET_FORMAT:
        if config.get("family") not in FAMILIES:
            raise ValueError(f"{preset} holds family {config.get('family')!r}, which is not in "
                             f"reference_impl.families.FAMILIES ({sorted(FAMILIES)}).")
        return FAMILIES[config["family"]], config
    if "model_type" in config:
        return hugging_face_family(config["model_type"]), config
    raise ValueError(f"{Path(preset) / 'config.json'} is neither a kit preset (format "
                     f"{PRESET_FORMAT!r}) nor a Hugging Face config (model_type).")


def load_tokenizer(preset, sequence_length):
    """The encoder saved in a preset folder (kit or Hugging Face), for its family."""
    family, _ = preset_family(preset)
    if family.load_tokenizer is None:
        raise ValueError(f"The {family.name} family has no tokenizer files to load "
                         f"(its tokenizer is {family.tokenizer!r}).")
    return family.load_tokenizer(preset, sequence_length)


class Presets:
    """Mixin for backbones: `sizes` + `from_name`, `from_preset` and `save_to_preset`."""

    #: Named sizes, e.g. {"tiny": {"num_layers": 2, ...}}; set by each subclass.
    sizes = {}

    @classmethod
    def from_name(cls, name, **overrides):
        """Build a named size, e.g. `BertBackbone.from_name("tiny", vocabulary_size=8000)`."""
        if name not in cls.sizes:
            raise ValueError(
                f"{cls.__name__} has no size {name!r}; choose one of {sorted(cls.sizes)}."
            )
        return cls(**{**cls.sizes[name], **overrides})

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """The model saved in `preset`, a Hugging Face checkpoint folder or a kit preset folder.

        `overrides` replace config entries (e.g. dropout=0.0); load_weights=False
        builds the architecture only.
        """
        family, config = preset_family(preset)
        if not issubclass(family.backbone, cls):
            raise ValueError(f"{preset} holds a {family.name} model ({family.backbone.__name__}); "
                             f"load it with {family.backbone.__name__}.from_preset.")
        if config.get("format") != PRESET_FORMAT:
            from reference_impl.checkpoints import load_hugging_face

            if not load_weights:
                converter = importlib.import_module(family.converter)
                return family.backbone(**{**converter.convert_backbone_config(config), **overrides})
            return load_hugging_face(preset, **overrides)
        model = family.backbone.from_config({**config["config"], **overrides})
        if load_weights:
            model.load_weights(Path(preset) / WEIGHTS_FILE)
        return model

    def save_to_preset(self, preset, tokenizer=None):
        """Write a kit preset folder: config.json, the weights and (optionally) the tokenizer's files."""
        from reference_impl.families import family_of

        folder = Path(preset)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"format": PRESET_FORMAT, "family": family_of(type(self)).name,
                  "class": type(self).__name__, "config": self.get_config()}
        if tokenizer is not None:
            tokenizer.save(folder)
            config["tokenizer"] = type(tokenizer).__name__
        self.save_weights(folder / WEIGHTS_FILE)
        (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        return folder

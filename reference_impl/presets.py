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

Loading is safe: the class is one of the kit's model classes already
imported (`model_classes`), picked by the family and class names in
config.json, never imported from the folder; the config is plain JSON passed
to that class's `from_config`; the weights are HDF5 arrays. No code or pickle
in the folder runs.

Each model class declares what its presets need: `family` (its name) and
`hugging_face_converter` (a `reference_impl.checkpoints.convert_*` module,
whose `MODEL_TYPE` it reads). So this module and the model files import no
family registry: `reference_impl.families` imports them, and its
`load_preset`, `load_hugging_face` and `load_tokenizer` work for every
family; `Backbone.from_preset` finds the families whose modules are imported.
"""

import json
from pathlib import Path

from reference_impl.checkpoints.tensors import CheckpointTensors

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


def model_classes():
    """Every model class with presets that is loaded now: `Presets`'s subclasses, recursively."""
    found, pending = [], list(Presets.__subclasses__())
    while pending:
        model_class = pending.pop()
        if model_class not in found:
            found.append(model_class)
            pending += model_class.__subclasses__()
    return found


def preset_class(preset, config):
    """The model class that loads `preset` (its `config.json` is `config`), among those loaded.

    A kit preset names its family and class; a Hugging Face folder names its
    `model_type`, which the class declaring that converter reads. Only classes
    whose module is imported are found: `reference_impl.families` imports them all.
    """
    everywhere = "reference_impl.families.load_preset(folder) loads every family's"
    classes = [c for c in model_classes() if c.family]
    if config.get("format") == PRESET_FORMAT:
        families = sorted({c.family for c in classes})
        if config.get("family") not in families:
            raise ValueError(f"{preset} holds family {config.get('family')!r}, which is not in the "
                             f"families of the model classes loaded ({families}); {everywhere}.")
        named = [c for c in classes if c.family == config["family"] and c.__name__ == config.get("class")]
        if len(named) != 1:
            raise ValueError(f"{preset} holds class {config.get('class')!r}, which is not one model "
                             f"class of the {config['family']} family loaded (found {len(named)}).")
        return named[0]
    if "model_type" in config:
        # The class declaring the converter, not its subclasses, which inherit it.
        converts = {c.hugging_face_converter.MODEL_TYPE: c for c in classes
                    if vars(c).get("hugging_face_converter")}
        if config["model_type"] not in converts:
            raise ValueError(f"{Path(preset) / 'config.json'}: model_type {config['model_type']!r} is "
                             f"not supported; supported: {sorted(converts)} (by the model classes "
                             f"loaded; {everywhere}).")
        return converts[config["model_type"]]
    raise ValueError(f"{Path(preset) / 'config.json'} is neither a kit preset (format "
                     f"{PRESET_FORMAT!r}) nor a Hugging Face config (model_type).")


class Presets:
    """Mixin for backbones: `sizes` + `from_name`, `from_preset` and `save_to_preset`."""

    #: Named sizes, e.g. {"tiny": {"num_layers": 2, ...}}; set by each subclass.
    sizes = {}
    #: The model family's name, e.g. "bert", written in kit presets; set by each family's class.
    family = None
    #: The module converting Hugging Face checkpoints of `MODEL_TYPE` into this class, or None.
    hugging_face_converter = None

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
        config = read_preset_config(preset)
        model_class = preset_class(preset, config)
        if issubclass(cls, model_class):  # a subclass of the saved class loads as itself
            model_class = cls
        elif not issubclass(model_class, cls):
            raise ValueError(f"{preset} holds a {model_class.family} model ({model_class.__name__}); "
                             f"load it with {model_class.__name__}.from_preset.")
        if config.get("format") == PRESET_FORMAT:
            model = model_class.from_config({**config["config"], **overrides})
            if load_weights:
                model.load_weights(Path(preset) / WEIGHTS_FILE)
            return model
        converter = model_class.hugging_face_converter
        # The weight files first: a folder without them fails before the model is built.
        tensors = (CheckpointTensors(preset, converter.TENSOR_PREFIX, converter.MODEL_TYPE)
                   if load_weights else None)
        model = model_class(**{**converter.convert_backbone_config(config), **overrides})
        if load_weights:
            converter.convert_weights(model, tensors, config)
        return model

    def save_to_preset(self, preset, tokenizer=None):
        """Write a kit preset folder: config.json, the weights and (optionally) the tokenizer's files."""
        if self.family is None:
            raise ValueError(f"{type(self).__name__} names no model family: set its class "
                             f"attribute `family` (see reference_impl/README.md, Add a model family).")
        folder = Path(preset)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"format": PRESET_FORMAT, "family": self.family,
                  "class": type(self).__name__, "config": self.get_config()}
        if tokenizer is not None:
            tokenizer.save(folder)
            config["tokenizer"] = type(tokenizer).__name__
        self.save_weights(folder / WEIGHTS_FILE)
        (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        return folder

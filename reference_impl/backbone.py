"""What every backbone in the kit shares: named sizes and its config.

Backbones are functional Keras models, as in keras-hub: each subclass builds its
graph in `__init__` from plain arguments and passes those arguments here, so
`get_config` / `from_config` (and with them `.keras` save and load) need no
per-model code.
"""

import keras

from reference_impl.layers import register


@register
class Backbone(keras.Model):
    #: Named sizes, e.g. {"tiny": {"num_layers": 2, ...}}; set by each subclass.
    presets = {}

    def __init__(self, inputs, outputs, config, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._backbone_config = dict(config)

    @classmethod
    def from_name(cls, name, **overrides):
        """Build a named size, e.g. `BertBackbone.from_name("tiny", vocabulary_size=8000)`."""
        if name not in cls.presets:
            raise ValueError(
                f"{cls.__name__} has no size {name!r}; choose one of {sorted(cls.presets)}."
            )
        return cls(**{**cls.presets[name], **overrides})

    @property
    def token_embedding(self):
        """The (reversible) token embedding table, shared with output heads."""
        return self.embeddings.token_embedding

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                **self._backbone_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class WrapsBackbone:
    """Config for models built around one backbone (pretrainers): the backbone, serialized."""

    def get_config(self):
        return {"name": self.name, "backbone": keras.layers.serialize(self.backbone)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

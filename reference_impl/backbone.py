"""What every backbone in the kit shares: named sizes, presets and its config.

Backbones are functional Keras models, as in keras-hub: each subclass builds its
graph in `__init__` from plain arguments and passes those arguments here, so
`get_config` / `from_config` (and with them `.keras` save and load) need no
per-model code. `sizes`, `from_name`, `from_preset` and `save_to_preset` come
from `reference_impl.presets.Presets`.
"""

import keras

from reference_impl.layers import register
from reference_impl.presets import Presets


@register
class Backbone(Presets, keras.Model):
    def __init__(self, inputs, outputs, config, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._backbone_config = dict(config)

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
    """Config for models built around one model (pretrainers, task heads).

    The wrapped model is the constructor argument `wrapped_argument` (and the
    attribute of that name), saved serialized; the other arguments listed in
    `config_arguments` are saved from the attributes of the same names.
    """

    wrapped_argument = "backbone"
    config_arguments = ()

    def get_config(self):
        return {"name": self.name,
                self.wrapped_argument: keras.layers.serialize(getattr(self, self.wrapped_argument)),
                **{name: getattr(self, name) for name in self.config_arguments}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config[cls.wrapped_argument] = keras.layers.deserialize(config[cls.wrapped_argument])
        return cls(**config)

"""Keras Blueprint's own Keras layers, one class per file.

Importing this package registers them as Keras serializables, which `keras.saving.load_model`
needs to load a model that uses them.
"""

from .crop_to_match import CropToMatch
from .local_response_normalization import LocalResponseNormalization
from .pair_distance import PairDistance
from .sampling import Sampling

__all__ = ["CropToMatch", "LocalResponseNormalization", "PairDistance", "Sampling"]

"""Keras Blueprint's own Keras layers, one class per file.

Importing this package registers them as Keras serializables, which `keras.saving.load_model`
needs to load a model that uses them.
"""

from .adapted_normalization import AdaptedNormalization
from .class_token import ClassToken
from .crop_to_match import CropToMatch
from .drop_path import DropPath
from .layer_scale import LayerScale
from .local_response_normalization import LocalResponseNormalization
from .pair_distance import PairDistance
from .position_embedding import PositionEmbedding
from .region_batch import BatchToRegions, RegionsToBatch
from .region_proposals import RegionProposals
from .roi_align import RoIAlign
from .sampling import Sampling
from .slice import Slice
from .spectral_normalization import SpectralNormalization
from .transposed_convolution import Conv2DTranspose

__all__ = ["AdaptedNormalization", "BatchToRegions", "ClassToken", "Conv2DTranspose", "CropToMatch", "DropPath",
           "LayerScale", "LocalResponseNormalization", "PairDistance", "PositionEmbedding", "RegionProposals",
           "RegionsToBatch", "RoIAlign", "Sampling", "Slice", "SpectralNormalization"]

"""Generative training: reconstruction (autoencoders), variational autoencoders and adversarial
networks, their losses, settings and augmentations, sampling new images and measuring their quality.

Its trainer classes import from here: `ReconstructionTrainer`, `VaeTrainer`, `AdversarialTrainer`."""

from ..former_paths import family_exports

__getattr__ = family_exports(
    __name__, {"ReconstructionTrainer": "reconstruction", "VaeTrainer": "vae", "AdversarialTrainer": "adversarial"})

"""The VAE trainer: reconstruction + KL divergence to N(0, I), the two terms logged separately.

The spec's main model outputs `[reconstruction, mean, log_var]` and contains a sub-model named
`decoder` (for sampling the prior); see specs/vae.yaml. Training wraps it in a model whose
`compute_loss` adds the KL term, Keras's backend-agnostic hook, so one trainer serves TensorFlow
and JAX alike.

A class-conditional VAE (specs/cvae.yaml) takes a one-hot `label` input beside the image, and
its decoder takes one beside z: the trainer feeds each image's class to both, and the prior's
sample grid has one class per row.

`sampling: {from: fitted_mixture}` fits a Gaussian mixture to the encoder's codes of the
training images once training ends (trainers.generative.latent_mixture) and draws samples.png from it.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from builder.errors import SpecError

from ..data.datasets import load_dataset
from ..data.pipeline import (
    LABEL_INPUT,
    Preprocessing,
    StreamPlan,
    eval_stream,
    model_image_shape,
    model_inputs,
    preview,
    steps_per_epoch,
)
from ..registries import RECONSTRUCTION_LOSSES
from ..run import loop, plots
from ..run.distribution import per_replica
from ..run.optimization import make_optimizer
from ..run.trainer import Trainer, TrainingJob
from .latent_mixture import LatentMixture, fit_latent_mixture
from .options import VAE_OPTIONS
from .reconstruction import check_reproduces_input, datasets, save_reconstructions, shown_split
from .sampling import (
    check_conditional,
    check_label_classes,
    check_same_labels,
    draw,
    label_width,
    network_inputs,
    one_hot,
)


def reconstruction_error(kind: str, target, output):
    """Per-example sum over pixels, so it is on the scale of the KL term (a sum over latents)."""
    target, output = ops.cast(target, "float32"), ops.cast(output, "float32")
    error = RECONSTRUCTION_LOSSES.get(kind).per_pixel(target, output)
    return ops.sum(ops.reshape(error, (ops.shape(error)[0], -1)), axis=-1)


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, in nats."""
    mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


@keras.saving.register_keras_serializable(package="blueprint")
class VariationalTraining(keras.Model):
    """Trains a spec-built VAE: loss = reconstruction + kl_weight * KL, both averaged over the
    batch. `kl_weight` is a variable, so a warm-up can raise it between epochs.

    Args:
        network: the VAE, a model whose outputs are `[reconstruction, mean, log_var]`.
        loss: 'mse', 'mae' or 'binary_crossentropy' (pixels in [0, 1]).
        kl_weight: the KL term's weight (beta).
    """

    def __init__(self, network, loss="binary_crossentropy", kl_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.reconstruction_kind = loss
        self.kl_weight = keras.Variable(float(kl_weight), trainable=False, dtype="float32", name="kl_weight")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, mean, log_var = y_pred[:3]
        if isinstance(x, dict):  # a conditional VAE's inputs by name: it reconstructs the image
            x = next(value for name, value in x.items() if name != LABEL_INPUT)
        reconstruction_term = reconstruction_error(self.reconstruction_kind, x, reconstruction)
        kl_term = kl_divergence(mean, log_var)
        self.reconstruction_tracker.update_state(reconstruction_term)
        self.kl_tracker.update_state(kl_term)
        return per_replica(ops.mean(reconstruction_term) + self.kl_weight * ops.mean(kl_term))

    def get_config(self):
        return {"name": self.name, "network": keras.saving.serialize_keras_object(self.network),
                "loss": self.reconstruction_kind, "kl_weight": float(ops.convert_to_numpy(self.kl_weight))}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


class KLWarmUp(keras.callbacks.Callback):
    """Raise the KL weight linearly over the first `epochs` epochs (0: the full weight at once),
    which keeps the KL term from collapsing the posterior before the decoder has learnt anything;
    the weight in use is logged as `kl_weight`."""

    def __init__(self, weight: float, epochs: int):
        super().__init__()
        self.weight, self.epochs = float(weight), int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        fraction = min(1.0, (epoch + 1) / self.epochs) if self.epochs else 1.0
        self.model.kl_weight.assign(self.weight * fraction)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(ops.convert_to_numpy(self.model.kl_weight))


def check_network(network) -> None:
    outputs = network.outputs
    if len(outputs) < 3 or tuple(outputs[1].shape) != tuple(outputs[2].shape):
        raise SpecError(f"the vae trainer needs a main model with outputs [reconstruction, mean, log_var] "
                        f"(see specs/vae.yaml); '{network.name}' has {len(outputs)} output(s)")
    if "decoder" not in [layer.name for layer in network.layers]:
        raise SpecError(f"the vae trainer samples the prior with a sub-model named 'decoder'; "
                        f"'{network.name}' has none (see specs/vae.yaml)")
    decoder = network.get_layer("decoder")
    check_conditional(network, "VAE")
    check_conditional(decoder, "decoder")
    check_same_labels({"VAE": network, "decoder": decoder}, "VAE", "specs/cvae.yaml")
    check_reproduces_input(network, "vae")


def vae_datasets(network, splits, shape, config: dict, job=None, training: bool = True):
    """(training stream, validation batches, test batches): images alone, or for a conditional
    VAE the images and their one-hot classes as a dict by input name (so that Keras does not read
    a pair as (x, y), and `data.normalize` leaves the label alone)."""
    import tensorflow as tf

    classes = label_width(network)
    check_label_classes(classes, splits.class_names, "the VAE's")

    def by_name(images, batch):
        inputs = network_inputs(network, images, tf.one_hot(batch["label"], classes))
        return {tensor.name: value for tensor, value in zip(network.inputs, inputs)}

    return datasets(splits, shape, config, targets=False, job=job, training=training,
                    inputs_of=None if classes is None else by_name)


def shown_inputs(network):
    """What the pictures feed the network for previewed examples: their images, with their
    one-hot classes for a conditional VAE."""
    classes = label_width(network)
    if classes is None:
        return lambda shown: shown["image"]
    return lambda shown: network_inputs(network, shown["image"], one_hot(shown["label"], classes))


def wrap(model, config: dict):
    """The training wrapper around a spec-built VAE (a resumed checkpoint already is one)."""
    if isinstance(model, VariationalTraining):
        return model
    check_network(model)
    return VariationalTraining(model, loss=config["loss"],
                               kl_weight=config["kl"]["weight"], name=f"{model.name}_training")


def sample_prior(network, count: int, seed: int = 0, mixture: LatentMixture | None = None) -> np.ndarray:
    """Images decoded from `count` draws of z ~ N(0, I), or from `mixture` (a conditional
    decoder: class i mod its class count for the i-th)."""
    decoder = network.get_layer("decoder")
    classes = label_width(decoder)
    codes = None if mixture is None else mixture.sample(count, seed)
    return draw(decoder, count, seed, None if classes is None else np.arange(count) % classes, codes)


def save_prior_samples(network, path: Path, seed: int = 0, rows: int = 8, columns: int = 10,
                       mixture: LatentMixture | None = None) -> None:
    """Images decoded from draws of z ~ N(0, I), or from `mixture`; a conditional decoder's rows
    are its classes."""
    decoder = network.get_layer("decoder")
    classes = label_width(decoder)
    rows = rows if classes is None else classes
    asked = None if classes is None else np.repeat(np.arange(classes), columns)
    codes = None if mixture is None else mixture.sample(rows * columns, seed)
    samples = draw(decoder, rows * columns, seed, asked, codes)
    source = "z ~ N(0, I)" if mixture is None else f"z from the latent mixture ({len(mixture.weights)} Gaussians)"
    title = f"samples, {source}" + ("" if classes is None else ", one class per row")
    plots.image_grid([list(samples[r * columns:(r + 1) * columns]) for r in range(rows)], path, title=title)


def save_interpolation(network, split, prep: Preprocessing, path: Path, steps: int = 10) -> None:
    """Decode the straight line between the latent means of two test images of different classes."""
    shown = preview(split, prep, 64)
    images, labels = shown["image"], shown["label"]
    first = 0
    others = np.flatnonzero(labels != labels[first])
    second = int(others[0]) if len(others) else min(1, len(images) - 1)
    pair = {"image": images[[first, second]], "label": labels[[first, second]]}
    _, mean, _ = network.predict(shown_inputs(network)(pair), verbose=0)[:3]
    ends = pair["image"]
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    path_z = (1.0 - weights) * mean[0] + weights * mean[1]
    decoder = network.get_layer("decoder")
    classes = label_width(decoder)  # a conditional decoder's class moves along with z
    path_labels = None if classes is None else (1.0 - weights) * one_hot(pair["label"][:1], classes) + \
        weights * one_hot(pair["label"][1:], classes)
    decoded = np.asarray(decoder.predict(network_inputs(decoder, path_z, path_labels), verbose=0))
    plots.image_grid([[ends[0], *decoded, ends[1]]], path, title="latent interpolation between two test images")


def fit_codes(network, split, prep: Preprocessing, config: dict) -> LatentMixture:
    """The `sampling.components` Gaussian mixture of the encoder's codes of `split` (streamed)."""
    classes = label_width(network)
    plan = StreamPlan(lambda batch: ((batch["image"], batch["label"]), None), 256)

    def codes_of(batch):
        images, labels = batch
        inputs = network_inputs(network, images, None if classes is None else one_hot(labels, classes))
        # called directly: predict would trace a function per batch shape (the last is smaller)
        return [ops.convert_to_numpy(part) for part in network(inputs, training=False)[1:3]]

    return fit_latent_mixture(codes_of, eval_stream(split, prep, plan).as_numpy_iterator(),
                              config["sampling"]["components"], seed=config["seed"])


class VaeTrainer(Trainer):
    """The built-in `vae` trainer (its entry is in trainers.builtin)."""

    options = VAE_OPTIONS

    def fit(self, job: TrainingJob) -> dict:
        config, folder = job.config, job.folder
        trainer = wrap(job.model, config)
        network = trainer.network
        shape = model_image_shape(network)
        splits = loop.load_data(config, folder)
        train, val, test = vae_datasets(network, splits, shape, config, job=job)
        if job.resume is None:
            prep = Preprocessing.of(shape, config["data"])
            # a conditional VAE's normalizations would need labelled batches: they are refused by name
            loop.start_weights(network, config, None if label_width(network) else
                               lambda: model_inputs(splits.train, prep))
            steps = steps_per_epoch(len(splits.train), config["batch_size"], job.distributed)
            optimizer = make_optimizer(config["optimizer"], config["schedule"], steps, config["epochs"])
            trainer.compile(optimizer=optimizer, **loop.speed_settings(config))
        warm_up = KLWarmUp(config["kl"]["weight"], config["kl"]["warmup_epochs"])
        loop.fit(trainer, train, val, job, trainer_callbacks=[warm_up])
        metrics = loop.finish(trainer, test, len(splits.test), folder)
        prep = Preprocessing.of(shape, config["data"])
        save_reconstructions(network, shown_split(splits), prep, folder / "reconstructions.png",
                             inputs_of=shown_inputs(network))
        mixture = None
        if config["sampling"]["from"] == "fitted_mixture":
            mixture = fit_codes(network, splits.train, prep, config)
            mixture.save(folder)
        save_prior_samples(network, folder / "samples.png", seed=config["seed"], mixture=mixture)
        save_interpolation(network, shown_split(splits), prep, folder / "interpolation.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        trainer = wrap(model, config)
        if not trainer.compiled:
            trainer.compile(optimizer="adam")
        shape = model_image_shape(trainer.network)
        splits = load_dataset(config["data"])
        _, _, test = vae_datasets(trainer.network, splits, shape, config, training=False)
        return loop.evaluate(trainer, test, len(splits.test))

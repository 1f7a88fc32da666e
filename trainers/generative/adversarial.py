"""The adversarial trainer: a generator and a discriminator from one spec, each with its own
optimizer, updated in turn.

One interface, one train step per backend: `TensorFlowStep` (a `tf.function` with
`GradientTape`) and `JaxStep` (a jitted pure function over `stateless_call` and
`stateless_apply`). The epoch loop around them is shared: fixed-noise sample grids, the D and G
losses and the means of D(x) and D(G(z)) in history.csv, checkpoints of both networks and both
optimizers, and warnings for the failure modes the seeds name (mode collapse, vanishing
generator gradients when D wins).

A class-conditional pair (both networks take a one-hot `label` input, specs/cgan_digits.yaml)
trains on each real batch's labels: D sees real images with their classes, G is asked for the
same classes, and the sample grids show one class per row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
from keras import ops

from builder.errors import SpecError

from ..data.adaptation import adapt_normalizations
from ..data.datasets import load_dataset
from ..data.pipeline import Preprocessing, main_input, materialize
from ..errors import TrainingFault
from ..registries import ADVERSARIAL_LOSSES
from ..run import plots
from ..run.folder import STATE, atomic_write, last_checkpoint, record_trained_classes, write_history_csv
from ..run.interruption import stop_at_step_end
from ..run.optimization import make_optimizer
from ..run.saving import save_model
from ..run.trainer import ResumePoint, Trainer, TrainingJob
from .diff_augment import PARAMETERS, augment
from .judge import feature_model, judged_distance
from .options import ADVERSARIAL_OPTIONS, ADVERSARIAL_SETTINGS
from .sampling import (
    check_conditional,
    check_label_classes,
    check_same_labels,
    label_width,
    network_inputs,
    one_hot,
    pixels_from_tanh,
    save_samples,
)

NETWORKS = ("generator", "discriminator")
COLLAPSE_DIVERSITY = 0.2  # samples this much less varied than real images: mode collapse
GRID_NOISE = 64
GRID_COLUMNS = 8
AUGMENT_STREAM = 1  # the random numbers of `adversarial.diff_augment`, apart from the noise's


# -- the losses, from trainers.registries.ADVERSARIAL_LOSSES ---------------------------------------
def discriminator_loss(kind: str, real, fake, smoothing: float = 0.0):
    return ADVERSARIAL_LOSSES.get(kind).discriminator(real, fake, smoothing)


def generator_loss(kind: str, fake):
    return ADVERSARIAL_LOSSES.get(kind).generator(fake)


def is_sigmoid(kind: str) -> bool:
    """Whether the discriminator's outputs are logits of a probability under this loss."""
    return ADVERSARIAL_LOSSES.get(kind).sigmoid


def discriminator_view(kind: str, scores):
    """What history.csv calls D(x): the probability for sigmoid losses, the raw score otherwise."""
    return ops.mean(ops.sigmoid(scores)) if is_sigmoid(kind) else ops.mean(scores)


def _global_norm(grads):
    return ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))


# -- one train step per backend -------------------------------------------------------------------
class TensorFlowStep:
    """D updates (`n_critic` of them), then one G update, in a `tf.function` with `GradientTape`.
    Under a `tf.distribute` strategy each replica runs the step on its part of the batch
    (`strategy.run`) and draws its own noise; Keras's optimizers sum the replicas' gradients, so
    each replica hands over its gradient divided by the replica count."""

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, settings: dict, seed: int,
                 engine=None):
        import tensorflow as tf

        self.tf, self.g, self.d = tf, generator, discriminator
        self.g_opt, self.d_opt, self.settings, self.seed = g_optimizer, d_optimizer, settings, seed
        self.latent = int(main_input(generator).shape[-1])
        self.strategy = engine
        self.replicas = engine.num_replicas_in_sync if engine is not None else 1
        self.function = tf.function(self._step if engine is None else self._on_every_replica)

    def __call__(self, real, index: int) -> dict:
        return {k: float(v) for k, v in self.function(real, self.tf.constant(index, self.tf.int64)).items()}

    def batches(self, dataset):
        """The real images as this step takes them: split over the replicas under a strategy."""
        return dataset if self.strategy is None else self.strategy.experimental_distribute_dataset(dataset)

    def _on_every_replica(self, real, index):
        results = self.strategy.run(self._step, args=(real, index))
        return {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in results.items()}

    def sync(self):
        """Variables are updated in place on TensorFlow."""

    def _noise(self, shape, index, offset, uniform=False, stream=0):
        seed = self.tf.stack([self.tf.constant(self.seed, self.tf.int64), index * 16 + offset])
        if stream:  # the augmentations' own numbers, so the noise is the same with them or without
            seed = self.tf.random.experimental.stateless_fold_in(seed, stream)
        if self.replicas > 1:
            replica = self.tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = self.tf.random.experimental.stateless_fold_in(seed, replica)
        draw = self.tf.random.stateless_uniform if uniform else self.tf.random.stateless_normal
        return draw(shape, seed=seed)

    def _step(self, real, index):
        tf, s = self.tf, self.settings
        real, labels = real if isinstance(real, tuple) else (real, None)
        g, d = (lambda z: self.g(network_inputs(self.g, z, labels), training=True),
                lambda images: self.d(network_inputs(self.d, images, labels), training=True))
        batch = tf.shape(real)[0]

        def seen(images, offset):  # what D sees: the images, through the differentiable augmentations
            if not s["diff_augment"]:
                return images
            return augment(images, s["diff_augment"],
                           self._noise((batch, PARAMETERS), index, offset, uniform=True, stream=AUGMENT_STREAM))

        for k in range(s["n_critic"]):
            z = self._noise((batch, self.latent), index, 2 * k)
            with tf.GradientTape() as tape:
                fake = g(z)
                real_scores, fake_scores = d(seen(real, 2 * k)), d(seen(fake, 2 * k + 1))
                d_loss = discriminator_loss(s["loss"], real_scores, fake_scores, s["label_smoothing"])
                if s["loss"] == "wgan_gp":
                    eps = self._noise((batch, 1, 1, 1), index, 2 * k + 1, uniform=True)
                    d_loss += s["gradient_penalty"] * self._penalty(d, eps * real + (1.0 - eps) * fake)
            grads = tape.gradient(d_loss, self.d.trainable_variables)
            self.d_opt.apply(self._share(grads), self.d.trainable_variables)
        z = self._noise((batch, self.latent), index, 15)
        with tf.GradientTape() as tape:
            g_loss = generator_loss(s["loss"], d(seen(g(z), 15)))
        g_grads = tape.gradient(g_loss, self.g.trainable_variables)
        self.g_opt.apply(self._share(g_grads), self.g.trainable_variables)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": discriminator_view(s["loss"], real_scores),
                "d_fake": discriminator_view(s["loss"], fake_scores), "g_grad_norm": _global_norm(g_grads)}

    def _share(self, grads):
        """This replica's share of the gradient: the optimizer sums the replicas' shares."""
        if self.replicas == 1:
            return grads
        return [None if grad is None else grad / self.replicas for grad in grads]

    def _penalty(self, critic, mixed):
        with self.tf.GradientTape() as tape:
            tape.watch(mixed)
            scores = critic(mixed)
        grads = tape.gradient(scores, mixed)
        norms = self.tf.sqrt(self.tf.reduce_sum(self.tf.square(grads), axis=[1, 2, 3]) + 1e-12)
        return self.tf.reduce_mean(self.tf.square(norms - 1.0))


class JaxStep:
    """The same update as a jitted pure function of all the state: `stateless_call` runs the
    networks on explicit variables, `stateless_apply` returns new weights and optimizer state.
    Under a `keras.distribution` the weights are laid out over the mesh and each batch is
    sharded along it; XLA splits the step (one program, the same update as on one device)."""

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, settings: dict, seed: int,
                 engine=None):
        import jax

        self.jax, self.g, self.d = jax, generator, discriminator
        self.distribution = engine
        self.g_opt, self.d_opt, self.settings = g_optimizer, d_optimizer, settings
        self.key = jax.random.PRNGKey(seed)
        self.latent = int(main_input(generator).shape[-1])
        self.state = self._read_state()
        self.function = jax.jit(self._step)

    def __call__(self, real, index: int) -> dict:
        if self.state is None:
            self.state = self._read_state()
        def placed(array):
            array = np.asarray(array)
            if self.distribution is None:
                return array
            return self.jax.device_put(array, self.distribution.get_data_layout(array.shape).backend_layout)

        real = keras.tree.map_structure(placed, real)  # the images, or (images, labels)
        self.state, metrics = self.function(self.state, real, index)
        return {k: float(v) for k, v in metrics.items()}

    def batches(self, dataset):
        return dataset

    def _variables(self):
        return (self.g.trainable_variables, self.g.non_trainable_variables, self.d.trainable_variables,
                self.d.non_trainable_variables, self.g_opt.variables, self.d_opt.variables)

    def _read_state(self):
        return tuple([v.value for v in group] for group in self._variables())

    def sync(self):
        """Write the carried state back into the Keras variables (for sampling and checkpoints)."""
        for group, values in zip(self._variables(), self.state):
            for variable, value in zip(group, values):
                variable.assign(value)
        # Keras may donate the variables' buffers to its own jitted functions (predict), so the
        # next step reads the variables afresh instead of keeping references to those buffers.
        self.state = None

    def _step(self, state, real, index):
        jax, s = self.jax, self.settings
        g_train, g_rest, d_train, d_rest, g_opt_vars, d_opt_vars = state
        real, labels = real if isinstance(real, tuple) else (real, None)
        g_in = lambda z: network_inputs(self.g, z, labels)  # noqa: E731
        d_in = lambda images: network_inputs(self.d, images, labels)  # noqa: E731
        batch = real.shape[0]
        key = jax.random.fold_in(self.key, index)

        def seen(images, offset):  # what D sees: the images, through the differentiable augmentations
            if not s["diff_augment"]:
                return images
            draw_key = jax.random.fold_in(jax.random.fold_in(key, offset), AUGMENT_STREAM)
            return augment(images, s["diff_augment"], jax.random.uniform(draw_key, (batch, PARAMETERS)))

        for k in range(s["n_critic"]):
            noise_key, mix_key = jax.random.split(jax.random.fold_in(key, k))
            z = jax.random.normal(noise_key, (batch, self.latent))

            def d_objective(d_train_, d_rest_, g_rest_, z, mix_key, k=k):
                fake, g_rest_ = self.g.stateless_call(g_train, g_rest_, g_in(z), training=True)
                real_scores, d_rest_ = self.d.stateless_call(d_train_, d_rest_, d_in(seen(real, 2 * k)),
                                                             training=True)
                fake_scores, d_rest_ = self.d.stateless_call(d_train_, d_rest_, d_in(seen(fake, 2 * k + 1)),
                                                             training=True)
                loss = discriminator_loss(s["loss"], real_scores, fake_scores, s["label_smoothing"])
                if s["loss"] == "wgan_gp":
                    eps = jax.random.uniform(mix_key, (batch, 1, 1, 1))
                    mixed = eps * real + (1.0 - eps) * fake
                    critic = lambda x: self.d.stateless_call(d_train_, d_rest_, d_in(x), training=True)[0].sum()  # noqa: E731
                    grads = jax.grad(critic)(mixed)
                    norms = jax.numpy.sqrt(jax.numpy.sum(grads ** 2, axis=(1, 2, 3)) + 1e-12)
                    loss = loss + s["gradient_penalty"] * jax.numpy.mean((norms - 1.0) ** 2)
                return loss, (d_rest_, g_rest_, real_scores, fake_scores)

            (d_loss, (d_rest, g_rest, real_scores, fake_scores)), grads = jax.value_and_grad(
                d_objective, has_aux=True)(d_train, d_rest, g_rest, z, mix_key)
            d_train, d_opt_vars = self.d_opt.stateless_apply(d_opt_vars, grads, d_train)
        z = jax.random.normal(jax.random.fold_in(key, 15), (batch, self.latent))

        def g_objective(g_train_):
            fake, g_rest_ = self.g.stateless_call(g_train_, g_rest, g_in(z), training=True)
            scores, d_rest_ = self.d.stateless_call(d_train, d_rest, d_in(seen(fake, 15)), training=True)
            return generator_loss(s["loss"], scores), (g_rest_, d_rest_)

        (g_loss, (g_rest, d_rest)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(g_train)
        g_train, g_opt_vars = self.g_opt.stateless_apply(g_opt_vars, g_grads, g_train)
        metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": discriminator_view(s["loss"], real_scores),
                   "d_fake": discriminator_view(s["loss"], fake_scores), "g_grad_norm": _global_norm(g_grads)}
        return (g_train, g_rest, d_train, d_rest, g_opt_vars, d_opt_vars), metrics


STEPS = {"tensorflow": TensorFlowStep, "jax": JaxStep}


def make_step(*args, **kwargs):
    backend = keras.backend.backend()
    if backend not in STEPS:
        raise TrainingFault(f"the adversarial trainer has train steps for {', '.join(STEPS)}; not for {backend}")
    return STEPS[backend](*args, **kwargs)


# -- what the seeds warn about --------------------------------------------------------------------
def diversity(samples: np.ndarray, reference: np.ndarray) -> float:
    """Mean pairwise distance between samples, relative to the same for real images (1: as
    varied as the data; near 0: every sample alike, i.e. mode collapse)."""
    def spread(images):
        flat = images.reshape(len(images), -1).astype("float64")
        squared = (flat ** 2).sum(axis=1)
        distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0.0))
        return distances.sum() / (len(flat) * (len(flat) - 1))
    return float(spread(samples) / max(spread(reference), 1e-12))


def failure_warnings(history: list, loss: str) -> list:
    """Warnings for the last epoch of `history`. A generator starts out making near-identical
    images; collapse is diversity falling low after it had been at least twice as high."""
    row, first = history[-1], history[0]
    best_before = max((earlier["diversity"] for earlier in history[:-1]), default=0.0)
    found = []
    if row["diversity"] < COLLAPSE_DIVERSITY and row["diversity"] < 0.5 * best_before:
        found.append(f"mode collapse: the fixed-noise samples are {row['diversity']:.2f}x as varied as real "
                     f"images (down from {best_before:.2f}); the generator is producing nearly the same image for "
                     "every z. Try a lower generator learning rate, label smoothing, or the wgan_gp loss")
    d_wins = row["d_fake"] < 0.05 if is_sigmoid(loss) else row["d_real"] - row["d_fake"] > 10.0
    if d_wins and row["g_grad_norm"] < 0.1 * first["g_grad_norm"]:
        hint = "use loss: non_saturating" if loss == "minimax" else "slow the discriminator down"
        found.append(f"vanishing generator gradients: D wins (mean D(G(z)) {row['d_fake']:.3f}) and the generator's "
                     f"gradient norm fell to {row['g_grad_norm']:.2e} from {first['g_grad_norm']:.2e}; {hint}")
    return found


# -- the run ---------------------------------------------------------------------------------------
def networks_of(models: dict) -> tuple:
    missing = [name for name in NETWORKS if name not in models]
    if missing:
        raise SpecError(f"the adversarial trainer needs models named generator and discriminator in the spec; "
                        f"it has {', '.join(models)}")
    generator, discriminator = models["generator"], models["discriminator"]
    check_conditional(generator, "generator")
    check_conditional(discriminator, "discriminator")
    made, taken = tuple(generator.outputs[0].shape[1:]), tuple(main_input(discriminator).shape[1:])
    if made != taken:
        raise SpecError(f"the generator makes {made} images but the discriminator takes {taken}")
    check_same_labels({"generator": generator, "discriminator": discriminator}, "GAN", "specs/cgan_digits.yaml")
    return generator, discriminator


def real_batches(config: dict, shape: tuple, classes: int | None = None):
    """Training images scaled to the generator's tanh range [-1, 1], in full batches, with their
    one-hot labels when the networks take `classes` of them. The loop keeps the images in memory
    (it draws its reference images from them): data that fits."""
    import tensorflow as tf

    splits = load_dataset(config["data"])
    check_label_classes(classes, splits.class_names, "the networks'")
    prep = Preprocessing.of(shape, {})
    parts = [materialize(split, prep) for split in (splits.train, splits.val) if len(split)]
    images = np.concatenate([part[0] for part in parts]) * 2.0 - 1.0
    if len(images) < config["batch_size"]:
        raise TrainingFault(f"{len(images)} training images are fewer than one batch of {config['batch_size']}")
    labels = None if classes is None else one_hot(np.concatenate([part[1] for part in parts]), classes)
    dataset = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    dataset = dataset.shuffle(len(images), seed=config["seed"], reshuffle_each_iteration=True)
    return dataset.batch(config["batch_size"], drop_remainder=True).prefetch(2), images, labels


def optimizers(config: dict, steps: int):
    settings = config["adversarial"]
    make = lambda name: make_optimizer(settings[name], {"constant": {}}, steps, config["epochs"])  # noqa: E731
    return make("generator_optimizer"), make("discriminator_optimizer")


def train(models: dict, config: dict, folder: Path, initial_epoch: int = 0, history=None, verbose=1,
          checkpoint=None, placement=None) -> dict:
    generator, discriminator = networks_of(models)
    shape, classes = tuple(main_input(discriminator).shape[1:]), label_width(generator)
    dataset, real, real_labels = real_batches(config, shape, classes)
    judge = feature_model(config["adversarial"]["judge"]) if config["adversarial"].get("judge") else None
    if real_labels is not None:
        record_trained_classes(folder, real_labels.sum(axis=0))
    steps = len(real) // config["batch_size"]
    g_opt, d_opt = optimizers(config, steps)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    if checkpoint is not None:
        _restore(checkpoint, generator, discriminator, g_opt, d_opt)
    else:  # the discriminator sees real images: its normalizations adapt to them; noise has nothing to adapt to
        adapt_normalizations(discriminator, lambda: (
            network_inputs(discriminator, real[i:i + 256], None if classes is None else real_labels[i:i + 256])
            for i in range(0, len(real), 256)))
        adapt_normalizations(generator, None)
    engine = placement.engine if placement is not None else None
    step = make_step(generator, discriminator, g_opt, d_opt, config["adversarial"], config["seed"], engine)
    whole_batches = placement.whole_batches if placement is not None else contextlib.nullcontext
    fixed_inputs = grid_inputs(generator, config["seed"])
    reference = real[np.random.default_rng(config["seed"] + 1).permutation(len(real))[:GRID_NOISE]]
    history = list(history or [])
    (folder / "samples").mkdir(exist_ok=True)
    with stop_at_step_end() as stop:
        for epoch in range(initial_epoch, config["epochs"]):
            if verbose:
                print(f"Epoch {epoch + 1}/{config['epochs']}")
            bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=["d_real", "d_fake"])
            sums: dict = {}
            for i, batch in enumerate(step.batches(dataset)):
                if keras.backend.backend() != "tensorflow":
                    batch = keras.tree.map_structure(lambda tensor: tensor.numpy(), batch)
                values = step(batch, epoch * steps + i)
                if not all(np.isfinite(v) for v in values.values()):
                    raise TrainingFault(f"a loss became non-finite at epoch {epoch + 1}, step {i + 1} ({values}); "
                                        "lower the learning rates")
                sums = {k: sums.get(k, 0.0) + v for k, v in values.items()}
                bar.update(i + 1, [(k, v) for k, v in values.items() if k != "g_grad_norm"])
                if i + 1 < steps:  # at the epoch's end, its checkpoint comes first
                    stop.check()
            step.sync()
            with whole_batches(), averaged_weights(generator, g_opt):
                samples = np.asarray(generator.predict(fixed_inputs, verbose=0))
            row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()},
                   "diversity": diversity(samples, reference)}
            history.append(row)
            for message in failure_warnings(history, config["adversarial"]["loss"]):
                print(f"warning: epoch {epoch + 1}: {message}", file=sys.stderr)
                with open(folder / "warnings.txt", "a", encoding="utf-8") as handle:
                    handle.write(f"epoch {epoch + 1}: {message}\n")
            save_grid(samples, folder / "samples" / f"epoch_{epoch + 1:03d}.png", f"epoch {epoch + 1}")
            _save_checkpoint(folder, epoch + 1, history, generator, discriminator, g_opt, d_opt)
            stop.check()
    with whole_batches(), averaged_weights(generator, g_opt):
        judged = {}
        if judge is not None:
            shares = None if real_labels is None else real_labels.sum(axis=0)
            judged["frechet_distance"] = judged_distance(generator, judge, config, shares, config["seed"])
        return _finish(folder, history, generator, discriminator, fixed_inputs, judged)


@contextlib.contextmanager
def averaged_weights(generator, optimizer):
    """The generator with its optimizer's moving average of its weights in place of them, when
    the optimizer keeps one (`use_ema`): the samples, the per-epoch figures and the saved
    generator come from the average (the field's usual practice); training goes on, and
    checkpoints resume, from the weights themselves."""
    if not optimizer.use_ema:
        yield generator
        return
    weights = [ops.copy(variable.value) for variable in generator.trainable_variables]
    optimizer.finalize_variable_values(generator.trainable_variables)
    for variable in generator.trainable_variables:
        # its own copy: on JAX, predict may donate a variable's buffer, which would take the
        # optimizer's average (the same array after finalize) with it
        variable.assign(ops.copy(variable.value))
    try:
        yield generator
    finally:
        for variable, value in zip(generator.trainable_variables, weights):
            variable.assign(value)


def grid_inputs(generator, seed: int):
    """The fixed noise of the per-epoch grids; for a conditional generator, one class per row."""
    classes = label_width(generator)
    count = GRID_NOISE if classes is None else classes * GRID_COLUMNS
    noise = np.random.default_rng(seed).standard_normal((count, int(main_input(generator).shape[-1])))
    labels = None if classes is None else one_hot(np.repeat(np.arange(classes), GRID_COLUMNS), classes)
    return network_inputs(generator, noise.astype("float32"), labels)


def save_grid(samples: np.ndarray, path: Path, title: str) -> None:
    save_samples(pixels_from_tanh(samples), path, f"generator samples from fixed noise, {title}", GRID_COLUMNS)


def _save_checkpoint(folder: Path, epoch: int, history: list, generator, discriminator, g_opt, d_opt) -> None:
    """Both networks' weights and both optimizers' state in one file, written atomically, then
    the state file that names it; the previous checkpoint is removed last."""
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    arrays = {}
    for prefix, values in (("generator", generator.get_weights()), ("discriminator", discriminator.get_weights()),
                           ("generator_optimizer", [v.numpy() for v in g_opt.variables]),
                           ("discriminator_optimizer", [v.numpy() for v in d_opt.variables])):
        arrays.update({f"{prefix}_{i:04d}": np.asarray(value) for i, value in enumerate(values)})
    name = f"epoch_{epoch:03d}.npz"
    tmp = checkpoints / f".{name}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, checkpoints / name)
    previous = last_checkpoint(folder)
    atomic_write(checkpoints / STATE, json.dumps({"epoch": epoch, "checkpoint": name, "history": history}, indent=1))
    write_history_csv(folder, history)
    if previous is not None and previous[1].name != name:
        previous[1].unlink(missing_ok=True)


def _restore(path: Path, generator, discriminator, g_opt, d_opt) -> None:
    with np.load(path, allow_pickle=False) as archive:
        def group(prefix):
            return [archive[key] for key in sorted(k for k in archive.files if k.rsplit("_", 1)[0] == prefix)]
        generator.set_weights(group("generator"))
        discriminator.set_weights(group("discriminator"))
        for optimizer, prefix in ((g_opt, "generator_optimizer"), (d_opt, "discriminator_optimizer")):
            for variable, value in zip(optimizer.variables, group(prefix)):
                variable.assign(value)


def _finish(folder: Path, history: list, generator, discriminator, fixed_inputs, judged: dict) -> dict:
    save_model(generator, folder / "generator.keras")
    save_model(discriminator, folder / "discriminator.keras")
    save_model(generator, folder / "model.keras")
    metrics = {f"final_{k}": v for k, v in history[-1].items() if k != "epoch"} if history else {}
    metrics.update(judged)
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if history:
        plots.learning_curve(history, folder / "learning_curve.png")
    save_grid(np.asarray(generator.predict(fixed_inputs, verbose=0)), folder / "samples.png", "final")
    return metrics


class AdversarialTrainer(Trainer):
    """The built-in `adversarial` trainer (its entry is in trainers.builtin)."""

    search_metric = "frechet_distance"  # with adversarial.judge set
    options = ADVERSARIAL_OPTIONS
    honours = ADVERSARIAL_SETTINGS

    def fit(self, job: TrainingJob) -> dict:
        """A new run, or on after the last completed epoch (both optimizers' state included)."""
        checkpoint = job.resume.checkpoint if job.resume else None
        return train(job.models, job.config, job.folder, job.initial_epoch, job.history, job.verbose, checkpoint,
                     job.placement)

    def unmeasured(self, metric: str, config: dict) -> str | None:
        if metric == "frechet_distance" and not config["adversarial"].get("judge"):
            return ("an adversarial run measures frechet_distance only with a judge: a classifier's run folder, "
                    "e.g. --train adversarial.judge=runs/lenet5/TIMESTAMP (or choose --metric)")
        return None

    def resume_models(self, spec_file: str, params: dict, resume: ResumePoint) -> dict:
        """Both networks rebuilt from the spec; `fit` restores their weights from the checkpoint."""
        from builder import build_models

        return build_models(spec_file, params)

    def evaluate(self, model, config: dict) -> dict:
        raise TrainingFault("an adversarial run has no test metrics to evaluate; its history.csv and samples "
                            "show how it went (bench/adversarial.py judges samples with a classifier)")

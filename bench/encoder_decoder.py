"""Quality of the encoder-decoder family, each trained from its spec's own `train:` section.

    python bench/encoder_decoder.py [--backend tensorflow|jax] [--out runs/bench]

- autoencoder on digits: test MSE against PCA with the same latent size (fitted on the same
  training images at the same resolution; a linear autoencoder can at best match PCA);
- the autoencoder's encoder, frozen, under a classifier head (the seeds' pretraining recipe);
- unet_padded on shapes: mean IoU on held-out images (target >= 0.90);
- vae on digits: KL > 0 at the end (no posterior collapse), and 100 samples from the prior judged
  by a LeNet-5 trained from specs/lenet5.yaml: mean top probability >= 0.8, >= 8 distinct classes.
Prints a Markdown table for docs/benchmarks.md; exit status 1 if a target is missed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def pca_test_mse(spec_path, latent: int) -> float:
    """PCA with `latent` components on the autoencoder's training images, MSE on its test images."""
    from builder import load_spec
    from builder.language.train_section import resolve_train
    from trainers.data.datasets import load_dataset
    from trainers.data.pipeline import prepare_images

    spec = load_spec(spec_path)
    config = resolve_train(spec.train)
    shape = tuple(spec.graphs[spec.main].inputs["input"])
    splits = load_dataset(config["data"])
    train = prepare_images(splits.train.images, shape).reshape(len(splits.train), -1)
    test = prepare_images(splits.test.images, shape).reshape(len(splits.test), -1)
    mean = train.mean(axis=0)
    _, _, components = np.linalg.svd(train - mean, full_matrices=False)
    basis = components[:latent]
    reconstructed = (test - mean) @ basis.T @ basis + mean
    return float(np.mean((reconstructed - test) ** 2))


def judge_samples(classifier, samples: np.ndarray):
    probabilities = classifier.predict(samples, verbose=0)
    top = probabilities.max(axis=-1)
    classes = np.bincount(probabilities.argmax(axis=-1), minlength=10)
    return float(top.mean()), int((classes > 0).sum()), classes


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0])
    from builder import load_spec
    from trainers import run_training
    from trainers.generative.vae import sample_prior
    from trainers.run.loop import load_trained_model

    rows = []

    def report(name, figure, target, ok, seconds):
        rows.append((name, figure, target, ok, seconds))
        print(f"{name}: {figure} (target {target}) {'ok' if ok else 'MISSED'} [{seconds:.0f} s]", flush=True)

    start = time.perf_counter()
    autoencoder, metrics = run_training(SPECS / "autoencoder.yaml", out=args.out, verbose=0)
    latent = load_spec(SPECS / "autoencoder.yaml").params["latent"]
    pca = pca_test_mse(SPECS / "autoencoder.yaml", latent)
    ratio = metrics["test_mse"] / pca
    report(f"autoencoder (latent {latent}) test MSE vs PCA-{latent}",
           f"{metrics['test_mse']:.4f} vs {pca:.4f} (ratio {ratio:.2f})", "ratio < 1", ratio < 1,
           time.perf_counter() - start)

    start = time.perf_counter()
    frozen = {"init_from": {"path": str(autoencoder), "layers": ["encoder"]}, "freeze": ["encoder"]}
    _, metrics = run_training(SPECS / "encoder_classifier.yaml", train_overrides=frozen, out=args.out, verbose=0)
    report("encoder_classifier, pretrained encoder frozen: test accuracy", f"{metrics['test_accuracy']:.4f}",
           "(reported)", True, time.perf_counter() - start)

    start = time.perf_counter()
    _, metrics = run_training(SPECS / "unet_padded.yaml", out=args.out, verbose=0)
    iou = metrics["test_mean_iou"]
    report("unet_padded on shapes: held-out mean IoU", f"{iou:.4f} (pixel accuracy "
           f"{metrics['test_pixel_accuracy']:.4f})", ">= 0.90", iou >= 0.90, time.perf_counter() - start)

    start = time.perf_counter()
    vae_run, metrics = run_training(SPECS / "vae.yaml", out=args.out, verbose=0)
    kl = metrics["test_kl_loss"]
    report("vae on digits: test KL (nats)", f"{kl:.2f} (reconstruction {metrics['test_reconstruction_loss']:.1f})",
           "> 0", kl > 0.1, time.perf_counter() - start)

    start = time.perf_counter()
    judge_run, judge_metrics = run_training(SPECS / "lenet5.yaml", out=args.out, verbose=0)
    samples = sample_prior(load_trained_model(vae_run), 100, seed=1234)
    mean_top, distinct, counts = judge_samples(load_trained_model(judge_run), samples)
    report("vae: 100 prior samples judged by LeNet-5 "
           f"(test accuracy {judge_metrics['test_accuracy']:.4f})",
           f"mean top probability {mean_top:.3f}, {distinct} classes (counts {counts.tolist()})",
           ">= 0.8, >= 8 classes", mean_top >= 0.8 and distinct >= 8, time.perf_counter() - start)

    print(f"\n| measurement | {args.backend} | target | met |")
    print("|---|---|---|---|")
    for name, figure, target, ok, _ in rows:
        print(f"| {name} | {figure} | {target} | {'yes' if ok else 'NO'} |")
    return 0 if all(ok for *_, ok, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

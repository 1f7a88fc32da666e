"""Generative quality as the field measures it, for specs/vae.yaml, specs/dcgan_digits.yaml,
specs/sngan_digits.yaml, specs/scgan_digits.yaml and the class-conditional specs/cgan_digits.yaml
and specs/cvae.yaml, trained from their own `train:` sections (or runs given with --vae / --gan /
--sngan / --scgan / --cgan / --cvae; --only names the generators to measure).

    python bench/generative_quality.py [--backend tensorflow|jax] [--out runs/bench] [--only NAME ...]
                                       [--vae RUN] [--gan RUN] [--sngan RUN] [--scgan RUN] [--cgan RUN] [--cvae RUN]

1,000 samples of each generator against the held-out real test digits, on the 84 features of a
LeNet-5 trained on the training split only (never on generated or test images): Fréchet distance,
KID (unbiased, with its standard error), precision and recall (k = 3), and the mean top
probability of an independent judge (an RBF support-vector classifier trained on the 8x8 training
digits; samples are averaged down to 8x8) with the share of each class it sees. Reference rows:
the training digits against the same test digits (the floor), uniform noise, and one training
digit repeated. A VAE that samples from its fitted latent mixture gets a second row from the
same run, with its codes from N(0, I). A generator conditioned on the digits' labels is asked for
each class in turn (100 samples of each); its row adds the share of samples the judge recognises
as the class asked for. scgan_digits, conditioned on clusters of the images, is sampled as an
unconditional generator (its clusters drawn as often as among its training images). Each
generator's figures are written to its run folder as quality.json. Prints a Markdown table for
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SAMPLES = 1000
GENERATORS = {"vae": "vae", "dcgan_digits": "gan", "sngan_digits": "sngan", "scgan_digits": "scgan",
              "cgan_digits": "cgan", "cvae": "cvae"}  # spec: its --option


def main() -> int:
    def extra(parser):
        parser.add_argument("--vae", help="a trained vae run folder (default: train specs/vae.yaml)")
        parser.add_argument("--gan", help="a trained dcgan_digits run folder (default: train its spec)")
        parser.add_argument("--sngan", help="a trained sngan_digits run folder (default: train its spec)")
        parser.add_argument("--scgan", help="a trained scgan_digits run folder (default: train its spec)")
        parser.add_argument("--cgan", help="a trained cgan_digits run folder (default: train its spec)")
        parser.add_argument("--cvae", help="a trained cvae run folder (default: train its spec)")
        parser.add_argument("--only", nargs="+", choices=list(GENERATORS), default=list(GENERATORS),
                            help="the generators to measure (default: all)")

    args = parse_training_args(__doc__.splitlines()[0], extra)
    import keras
    from sklearn.svm import SVC

    from builder.language.train_section import resolve_train
    from trainers import run_training
    from trainers.data.datasets import load_dataset
    from trainers.data.pipeline import Preprocessing, materialize
    from trainers.generative.quality import frechet_distance, kernel_inception_distance, precision_recall
    from trainers.generative.sampling import label_width, sample_run
    from trainers.run.folder import read_run_record
    from trainers.run.loop import load_trained_model

    runs, minutes = {}, {}
    for name in args.only:
        given = getattr(args, GENERATORS[name])
        start = time.perf_counter()
        runs[name] = Path(given) if given else run_training(SPECS / f"{name}.yaml", out=args.out, verbose=0)[0]
        minutes[name] = (time.perf_counter() - start) / 60 if not given else None
    # Conditioned on the digits' labels: asked for each class in turn. On clusters (scgan_digits):
    # unconditional, sample_run draws the clusters.
    asked = {name: np.arange(SAMPLES) % 10 for name, run in runs.items()
             if label_width(load_trained_model(run)) and not read_run_record(run)["train"]["data"].get("labels")}
    features_run, _ = run_training(SPECS / "lenet5.yaml", out=args.out, verbose=0)
    classifier = load_trained_model(features_run)
    features = keras.Model(classifier.input, classifier.layers[-2].output)

    splits = load_dataset(resolve_train({"data": {"dataset": "digits"}})["data"])
    train32, _ = materialize(splits.train, Preprocessing.of((32, 32, 1), {}))
    test32, _ = materialize(splits.test, Preprocessing.of((32, 32, 1), {}))
    train8, train_labels = materialize(splits.train, Preprocessing.of((8, 8, 1), {}))
    judge = SVC(gamma="scale", probability=True, random_state=0).fit(train8.reshape(len(train8), -1), train_labels)

    def shrink(images):  # 32x32 -> 8x8 by averaging 4x4 blocks
        return images.reshape(len(images), 8, 4, 8, 4).mean(axis=(2, 4)).reshape(len(images), -1)

    reference = np.asarray(features.predict(test32, verbose=0))
    rng = np.random.default_rng(0)
    candidates = {
        "training digits (floor)": train32,
        **{name: sample_run(run, SAMPLES, seed=2026) for name, run in runs.items()},
        **{f"{name}, z ~ N(0, I)": sample_run(run, SAMPLES, seed=2026, codes_from="prior")
           for name, run in runs.items() if (run / "latent_mixture.npz").is_file()},
        "uniform noise": rng.uniform(0, 1, (SAMPLES, 32, 32, 1)).astype("float32"),
        "one digit repeated": np.repeat(train32[:1], SAMPLES, axis=0),
    }
    real_confidence = float(judge.predict_proba(shrink(test32)).max(axis=1).mean())
    print(f"reference: {len(test32)} held-out test digits; judge mean top probability on them {real_confidence:.3f}")
    print("\n| samples | FD | KID x 1000 | precision | recall | judge confidence (vs real) | class shares min-max "
          "| class asked for recognised |")
    print("|---|---|---|---|---|---|---|---|")
    for name, images in candidates.items():
        sample_features = np.asarray(features.predict(images, verbose=0))
        kid, kid_error = kernel_inception_distance(reference, sample_features, subset_size=min(len(test32), 300))
        precision, recall = precision_recall(reference, sample_features)
        probabilities = judge.predict_proba(shrink(images))
        confidence = float(probabilities.max(axis=1).mean())
        shares = np.bincount(probabilities.argmax(axis=1), minlength=10) / len(images)
        figures = {"frechet_distance": frechet_distance(reference, sample_features), "kid": kid,
                   "kid_standard_error": kid_error, "precision": precision, "recall": recall,
                   "judge_mean_top_probability": confidence, "judge_real_mean_top_probability": real_confidence,
                   "class_shares": shares.round(4).tolist(), "samples": len(images), "reference_images": len(test32),
                   "training_minutes": minutes.get(name)}
        if name in asked:  # sample_run asked for class i % 10 of the i-th sample
            figures["judge_accuracy_on_asked_class"] = float(np.mean(probabilities.argmax(axis=1) == asked[name]))
        if name in runs:
            (runs[name] / "quality.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"| {name} | {figures['frechet_distance']:.2f} | {kid * 1000:.1f} +- {kid_error * 1000:.1f} | "
              f"{precision:.3f} | {recall:.3f} | {confidence:.3f} ({confidence / real_confidence:.0%}) | "
              f"{shares.min():.2f}-{shares.max():.2f} | "
              f"{format(figures['judge_accuracy_on_asked_class'], '.3f') if name in asked else '-'} |")
    print(f"\nbackend {args.backend}; training minutes: "
          + ", ".join(f"{name} {value:.1f}" for name, value in minutes.items() if value is not None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

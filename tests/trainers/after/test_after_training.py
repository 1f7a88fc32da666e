"""After training: test-time augmentation, ensembles, and AlexNet's PCA colour augmentation."""

import json
import shutil

import numpy as np
import pytest

from builder.cli import main
from trainers import run_training
from trainers.run.loop import load_trained_model

from ...conftest import SPECS

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_after_training")


@pytest.fixture(scope="module")
def lenet_runs(tmp_path_factory):
    """Three LeNet-5 runs on digits that differ only in their seed (the same data split)."""
    out = tmp_path_factory.mktemp("runs")
    return [run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 2, "seed": seed}, out=out / str(seed),
                         verbose=0)[0] for seed in (1, 2, 3)]


def _digit_files(folder, count=4):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in range(count):
        image = Image.fromarray((digits.images[index] * 255 / 16).astype("uint8")).resize((37, 37))
        paths.append(folder / f"digit{index}.png")
        image.save(paths[-1])
    return paths


# -- test-time augmentation ---------------------------------------------------------------------------
def test_views_are_the_corners_the_centre_and_their_mirror_images():
    import keras

    from trainers.registries import TEST_TIME_AUGMENTATIONS

    images = np.arange(2 * 9 * 10 * 3, dtype="float32").reshape(2, 9, 10, 3)
    views = [np.asarray(view) for view in
             TEST_TIME_AUGMENTATIONS.get("crop10").views(keras.ops.convert_to_tensor(images), (7, 8))]
    crops = [images[:, :7, :8], images[:, :7, 2:], images[:, 2:, :8], images[:, 2:, 2:], images[:, 1:8, 1:9]]
    expected = crops + [crop[:, :, ::-1] for crop in crops]
    assert len(views) == 10
    for view, reference in zip(views, expected):
        np.testing.assert_array_equal(view, reference)
    flips = TEST_TIME_AUGMENTATIONS.get("flip").views(keras.ops.convert_to_tensor(images), (9, 10))
    np.testing.assert_array_equal(np.asarray(flips[1]), images[:, :, ::-1])


def test_evaluate_tta_reports_both_sides_and_matches_averaged_views(lenet_runs, capsys):
    from trainers.after.test_time import enlarged
    from trainers.data.pipeline import Preprocessing, StreamPlan, eval_stream
    from trainers.supervised.classification import label_finisher, prepare

    folder = lenet_runs[0]
    assert main(["evaluate", str(folder), "--tta", "crop10"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"plain", "crop10"}
    assert result["crop10"]["views"] == 10 and result["plain"]["views"] == 1
    metrics = json.loads((folder / "metrics.json").read_text())
    assert result["plain"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert result["crop10"]["test_examples"] == metrics["test_examples"] == 359

    # The reference: the test images at 37x37 (32 / 0.875), cut and mirrored by NumPy, averaged.
    config = json.loads((folder / "run.json").read_text())["train"]
    model = load_trained_model(folder)
    prepared = prepare(model, config)
    big = enlarged(Preprocessing.of((32, 32, 1), config["data"]), "crop10")
    assert big.image_shape == (37, 37, 1)
    stream = eval_stream(prepared.splits.test, big, StreamPlan(label_finisher(10, 1), 64))
    images, labels = (np.concatenate(part) for part in zip(*stream.as_numpy_iterator()))
    crops = [images[:, t:t + 32, s:s + 32] for t, s in ((0, 0), (0, 5), (5, 0), (5, 5), (2, 2))]
    views = crops + [crop[:, :, ::-1] for crop in crops]
    probabilities = np.mean([model.predict(view, verbose=0) for view in views], axis=0)
    accuracy = np.mean(probabilities.argmax(-1) == labels.argmax(-1))
    assert result["crop10"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_predict_tta_averages_the_image_and_its_mirror(lenet_runs, tmp_path, capsys):
    from trainers.data.pipeline import Preprocessing, image_file_inputs

    folder, paths = lenet_runs[0], _digit_files(tmp_path, 2)
    assert main(["predict", str(folder), *map(str, paths), "--top", "1", "--tta", "flip"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    model = load_trained_model(folder)
    images = image_file_inputs(paths, Preprocessing.of((32, 32, 1), {}))
    probabilities = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    for line, row in zip(lines, probabilities):
        assert line.endswith(f"{row.argmax()} {row.max():.3f}")


def test_tta_refuses_a_run_that_is_not_a_classifier(lenet_runs, tmp_path, capsys):
    folder = shutil.copytree(lenet_runs[0], tmp_path / "autoencoder")
    record = json.loads((folder / "run.json").read_text())
    record["train"]["trainer"] = "reconstruction"
    (folder / "run.json").write_text(json.dumps(record))
    assert main(["evaluate", str(folder), "--tta", "flip"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"data error: evaluate --tta averages a classifier's probabilities; {folder} was trained by the "
        "reconstruction trainer")


# -- ensembles -----------------------------------------------------------------------------------------
def test_ensemble_averages_members_and_saves_one_model(lenet_runs, tmp_path, capsys):
    saved = tmp_path / "ensemble"
    assert main(["ensemble", *map(str, lenet_runs), "--save", str(saved)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model") and lines[4].startswith("ensemble of 3")
    members = [float(line.split()[1]) for line in lines[1:4]]
    for folder, accuracy in zip(lenet_runs, members):  # each member as its own run measured it
        assert accuracy == pytest.approx(json.loads((folder / "metrics.json").read_text())["test_accuracy"], abs=1e-4)

    # The reference: the members' probabilities on the test split, averaged by NumPy.
    from trainers.data.pipeline import StreamPlan, eval_stream
    from trainers.supervised.classification import label_finisher, prepare

    config = json.loads((lenet_runs[0] / "run.json").read_text())["train"]
    models = [load_trained_model(folder) for folder in lenet_runs]
    prepared = prepare(models[0], config)
    stream = eval_stream(prepared.splits.test, prepared.preprocessing, StreamPlan(label_finisher(10, 1), 64))
    images, labels = (np.concatenate(part) for part in zip(*stream.as_numpy_iterator()))
    averaged = np.mean([model.predict(images, verbose=0) for model in models], axis=0)
    accuracy = float(np.mean(averaged.argmax(-1) == labels.argmax(-1)))
    assert float(lines[4].split()[3]) == pytest.approx(accuracy, abs=1e-4)
    assert lines[5] == f"ensemble {accuracy - max(members):+.4f} accuracy against its best member"

    # The saved ensemble is one model that evaluate and predict take like a run folder.
    assert lines[6] == f"saved: {saved / 'model.keras'}"
    ensemble = load_trained_model(saved)
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), averaged, atol=1e-6)
    assert main(["evaluate", str(saved)]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert main(["predict", str(saved), str(_digit_files(tmp_path, 1)[0])]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'digit0.png'}: 0 ")


def test_ensemble_members_of_other_sizes_see_resized_images(lenet_runs, tmp_path):
    from trainers.after.ensemble import ensemble_models, load_member

    larger = run_training(SPECS / "lenet5.yaml", {"size": 36}, {"epochs": 1}, out=tmp_path, verbose=0)[0]
    members = [load_member(lenet_runs[0]), load_member(larger)]
    ensemble, report = ensemble_models(members)
    images = np.random.default_rng(0).random((3, 32, 32, 1)).astype("float32")
    import keras

    resized = np.asarray(keras.ops.image.resize(images, (36, 36)))
    expected = (members[0].model.predict(images, verbose=0) + members[1].model.predict(resized, verbose=0)) / 2
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-6)


def test_ensemble_refuses_members_that_disagree(lenet_runs, tmp_path, capsys):
    renamed = shutil.copytree(lenet_runs[1], tmp_path / "renamed")
    (renamed / "classes.json").write_text(json.dumps(["zero"] + [str(i) for i in range(1, 10)]))
    assert main(["ensemble", str(lenet_runs[0]), str(renamed)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"data error: {renamed} names class 0 'zero' where {lenet_runs[0]} names it '0'; ensemble members must "
        "predict the same classes in the same order")

    other_split = shutil.copytree(lenet_runs[1], tmp_path / "other_split")
    record = json.loads((other_split / "run.json").read_text())
    record["train"]["data"]["seed"] = 5
    (other_split / "run.json").write_text(json.dumps(record))
    assert main(["ensemble", str(lenet_runs[0]), str(other_split)]) == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"data error: {other_split} was trained on other data or another split than "
                              f"{lenet_runs[0]}") and message.endswith("pass --data to choose the test data")
    assert "\n" not in message
    assert main(["ensemble", str(lenet_runs[0]), str(other_split), "--data", "digits"]) == 0
    capsys.readouterr()

    assert main(["ensemble", str(lenet_runs[0])]) == 1
    assert capsys.readouterr().err.strip() == "data error: an ensemble needs at least two runs"


# -- PCA colour augmentation ------------------------------------------------------------------------
def _rgb_training_split():
    from trainers.data.datasets import load_dataset
    from trainers.data.pipeline import Preprocessing

    return load_dataset({"dataset": "shapes", "count": 120}).train, Preprocessing.of((32, 32, 3), {})


def test_principal_components_match_scikit_learn():
    from sklearn.decomposition import PCA

    from trainers.data.augmentation import principal_components
    from trainers.data.pipeline import materialize, pixel_statistics

    split, prep = _rgb_training_split()
    components = principal_components(pixel_statistics(split, prep))
    pixels = materialize(split, prep)[0].reshape(-1, 3).astype("float64")
    reference = PCA(3).fit(pixels)
    population = reference.explained_variance_ * (len(pixels) - 1) / len(pixels)
    np.testing.assert_allclose(components["eigenvalues"], population, rtol=1e-4)
    for ours, theirs in zip(np.asarray(components["eigenvectors"]).T, reference.components_):
        assert abs(float(ours @ theirs)) == pytest.approx(1.0, abs=1e-5)  # the same axis, either sign


@pytest.mark.parametrize("form", ["per_image", "batch"])
def test_pca_colour_offsets_have_the_covariance_alexnet_prescribes(form):
    """The offsets added to an image are sum_i alpha_i lambda_i p_i with alpha ~ N(0, std):
    their covariance over many draws is std^2 P diag(lambda^2) P^T."""
    import tensorflow as tf

    from trainers.data.augmentation import PrincipalColourNoise, pca_color_image, principal_components
    from trainers.data.pipeline import pixel_statistics

    settings = {**principal_components(pixel_statistics(*_rgb_training_split())), "std": 0.1}
    images = tf.zeros((4000, 2, 2, 3))
    if form == "per_image":
        offsets = tf.stack([pca_color_image(settings, images[i], tf.constant([7, i], tf.int64))
                            for i in range(len(images))])
    else:
        offsets = PrincipalColourNoise(settings, seed=3)(images)
    offsets = np.asarray(offsets)
    np.testing.assert_array_equal(offsets[:, 0, 0], offsets[:, 1, 1])  # one colour shift per image
    vectors, values = np.asarray(settings["eigenvectors"]), np.asarray(settings["eigenvalues"])
    expected = 0.01 * vectors @ np.diag(values ** 2) @ vectors.T
    np.testing.assert_allclose(np.cov(offsets[:, 0, 0].T), expected, atol=0.1 * np.abs(expected).max())


def test_pca_colour_trains_an_rgb_model_reproducibly_and_evaluation_skips_the_statistics(tmp_path, monkeypatch):
    import trainers.data.pipeline
    from trainers.run.training import evaluate_run

    runs = [run_training(SPECS / "lenet5.yaml", {"channels": 3, "classes": 3},
                         {"epochs": 1, "data": {"dataset": "shapes", "count": 120},
                          "augment": [{"pca_color": {"std": 0.1}}]}, out=tmp_path / str(i), verbose=0)
            for i in range(2)]
    (folder, metrics), (again, _) = runs
    assert np.isfinite(metrics["test_loss"])
    # The batch form draws from a generator inside tf.data: the same seed still trains the same.
    assert (folder / "history.csv").read_text() == (again / "history.csv").read_text()
    record = json.loads((folder / "run.json").read_text())
    assert record["train"]["augment"] == [{"pca_color": {"std": 0.1}}]

    def no_training_pass(*_):
        raise AssertionError("evaluation read the training split")

    monkeypatch.setattr(trainers.data.pipeline, "pixel_statistics", no_training_pass)
    evaluated = evaluate_run(folder, record["train"])
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_segmentation_changes_the_image_alone_with_pca_colour():
    from trainers.data.augmentation import PrincipalColourNoise
    from trainers.data.pipeline import pixel_statistics
    from trainers.supervised.segmentation import _augmentations

    split, prep = _rgb_training_split()
    config = {"augment": ["flip", {"pca_color": {"std": 0.2}}], "seed": 0}
    joint, image_only = _augmentations(config, (32, 32, 3), lambda: pixel_statistics(split, prep))
    assert len(joint) == 1 and [type(layer) for layer in image_only] == [PrincipalColourNoise]
    assert image_only[0].settings["std"] == 0.2 and len(image_only[0].settings["eigenvalues"]) == 3

"""The built-in entries of every training registry: trainers, datasets, optimizers, schedules,
augmentations, reconstruction losses, metrics, adversarial losses, test-time augmentations, export
formats and explanation methods. Each implementation's
module is imported when an entry is first used (the accessors below), so registering them
imports no backend."""

from __future__ import annotations

from builder.language.train_section import TRAINERS

from .detection.options import DETECTION_OPTIONS
from .generative.options import ADVERSARIAL_OPTIONS, ADVERSARIAL_SETTINGS, RECONSTRUCTION_OPTIONS, VAE_OPTIONS
from .metric.options import METRIC_OPTIONS, METRIC_SETTINGS
from .registries import (
    ADVERSARIAL_LOSSES,
    AUGMENTATIONS,
    DATASETS,
    EXPLANATION_METHODS,
    EXPORT_FORMATS,
    METRICS,
    OPTIMIZERS,
    RECONSTRUCTION_LOSSES,
    SCHEDULES,
    TEST_TIME_AUGMENTATIONS,
    AdversarialLossEntry,
    AugmentationEntry,
    DatasetEntry,
    ExplanationEntry,
    ExportEntry,
    LossEntry,
    OptionEntry,
    TestTimeEntry,
)
from .run.settings import FIT_SETTINGS, FRACTION, NON_NEGATIVE, POSITIVE, TrainerEntry
from .supervised.options import SUPERVISED_OPTIONS


# Accessors: each imports one implementation module when an entry is first used.
def _datasets():
    from .data import datasets
    return datasets


def _records():
    from .data import records
    return records


def _detection_data():
    from .detection import data
    return data


def _annotations():
    from .detection import annotations
    return annotations


def _optimization():
    from .run import optimization
    return optimization


def _augmentation():
    from .data import augmentation
    return augmentation


def _pixel_losses():
    from .generative import pixel_losses
    return pixel_losses


def _classification_metrics():
    from .supervised import metrics
    return metrics


def _adversarial_losses():
    from .generative import adversarial_losses
    return adversarial_losses


def _explanations():
    from .supervised import explanations
    return explanations


def _test_time():
    from .after import test_time
    return test_time


def _serving_runtimes():
    from .after import serving_runtimes
    return serving_runtimes


def _keras_optimizers():
    import keras
    return keras.optimizers


# -- datasets -------------------------------------------------------------------------------------
def _keras_dataset(name: str):
    return lambda config: _datasets().load_keras_dataset(name, config)


for _name, _entry in {
    "digits": DatasetEntry(lambda config: _datasets().load_digits(config),
                           "scikit-learn's 1,797 real 8x8 handwritten digits (shipped, offline)"),
    "shapes": DatasetEntry(lambda config: _datasets().load_shapes(config),
                           "generated circles, squares and triangles with per-pixel masks"),
    "image_folder": DatasetEntry(lambda config: _datasets().load_image_folder(config),
                                 "class sub-folders of images (or plain images, unlabelled)", path="folder"),
    "mask_folder": DatasetEntry(lambda config: _datasets().load_mask_folder(config),
                                "images/ and masks/ of the same file names", path="folder"),
    "tfrecord": DatasetEntry(lambda config: _records().load_tfrecord(config),
                             "TFRecord shards written by `python -m builder data pack`", path="folder"),
    "shapes_boxes": DatasetEntry(lambda config: _detection_data().load_shapes_boxes(config),
                                 "generated images of 1 to 5 circles, squares and triangles, each with its box "
                                 "and class (detection)"),
    "shapes_instances": DatasetEntry(lambda config: _detection_data().load_shapes_instances(config),
                                     "generated overlapping circles, squares and triangles on varied grounds, each "
                                     "with its mask, box and class (instance segmentation)"),
    "coco": DatasetEntry(lambda config: _annotations().load_coco(config),
                         "a COCO annotation file (boxes; instance masks from segmentations); its images under "
                         "data.images (default: its folder)",
                         path="file"),
    "voc": DatasetEntry(lambda config: _annotations().load_voc(config),
                        "a Pascal VOC folder: Annotations/*.xml and JPEGImages/", path="folder"),
    "npz": DatasetEntry(lambda config: _datasets().load_npz(config),
                        "arrays x, y (or x_train, y_train, x_test, y_test) in a .npz file", path="file"),
    **{f"keras:{name}": DatasetEntry(_keras_dataset(name), f"keras.datasets.{name} (Keras's cache, else downloaded)")
       for name in ("mnist", "fashion_mnist", "cifar10", "cifar100")},
}.items():
    DATASETS.register(_name, _entry)

# -- optimizers: make(learning_rate=schedule, **settings) -----------------------------------------
_OPTIMIZER = {"learning_rate": POSITIVE, "weight_decay": NON_NEGATIVE, "clipnorm": POSITIVE,
              "use_ema": {"type": "boolean", "description": "keep an exponential moving average of the weights and "
                                                            "end with it (the adversarial trainer samples with it)"},
              "ema_momentum": {**FRACTION, "description": "the average's momentum (Keras's default 0.99)"}}
_ADAM = {**_OPTIMIZER, "beta_1": FRACTION, "beta_2": FRACTION}
for _name, _entry in {
    "adam": OptionEntry(lambda **kw: _keras_optimizers().Adam(**kw), "keras.optimizers.Adam", _ADAM),
    "adamw": OptionEntry(lambda **kw: _keras_optimizers().AdamW(**kw), "keras.optimizers.AdamW", _ADAM),
    "sgd": OptionEntry(lambda **kw: _keras_optimizers().SGD(**kw), "keras.optimizers.SGD",
                       {**_OPTIMIZER, "momentum": NON_NEGATIVE, "nesterov": {"type": "boolean"}}),
    "rmsprop": OptionEntry(lambda **kw: _keras_optimizers().RMSprop(**kw), "keras.optimizers.RMSprop",
                           {**_OPTIMIZER, "momentum": NON_NEGATIVE, "rho": FRACTION}),
}.items():
    OPTIMIZERS.register(_name, _entry)

# -- learning-rate schedules: make(learning_rate, steps_per_epoch, epochs, settings) ----------------
_WARMUP = {"warmup_epochs": NON_NEGATIVE}
for _name, _entry in {
    "constant": OptionEntry(lambda *a: _optimization().constant_schedule(*a), "the learning rate throughout",
                            _WARMUP),
    "cosine": OptionEntry(lambda *a: _optimization().cosine_schedule(*a), "cosine decay to final_fraction of the "
                          "rate", {**_WARMUP, "final_fraction": NON_NEGATIVE}),
    "step": OptionEntry(lambda *a: _optimization().step_schedule(*a), "multiply by factor every every_epochs epochs",
                        {**_WARMUP, "every_epochs": {"type": "integer", "minimum": 1}, "factor": POSITIVE}),
    "exponential": OptionEntry(lambda *a: _optimization().exponential_schedule(*a), "multiply by factor_per_epoch "
                               "each epoch", {**_WARMUP, "factor_per_epoch": POSITIVE}),
}.items():
    SCHEDULES.register(_name, _entry)

# -- augmentations: layers(keras, settings, seed, image_shape) -------------------------------------
_FACTOR = {"factor": POSITIVE}
_RANGE = {"type": "array", "items": POSITIVE, "minItems": 2, "maxItems": 2}
for _name, _entry in {
    "flip": AugmentationEntry(lambda *a: _augmentation().flip(*a), "random mirror images",
                              {"mode": {"enum": ["horizontal", "vertical", "horizontal_and_vertical"]}}, "exactly",
                              per_image=lambda *a: _augmentation().flip_image(*a),
                              with_boxes=lambda *a: _augmentation().flip_with_boxes(*a)),
    # No `with_boxes` for crop: Keras 3.15's RandomCrop shifts boxes along the wrong axes (keras#23518,
    # fixed upstream by keras#23519); measured here, its boxes land up to 10 px off their objects.
    "crop": AugmentationEntry(lambda *a: _augmentation().crop(*a), "pad, then cut a random window of the original "
                              "size", {"padding": {"type": "integer", "minimum": 1}}),
    "rotation": AugmentationEntry(lambda *a: _augmentation().rotation(*a), "random rotation by up to factor of a "
                                  "full turn", _FACTOR),
    "translation": AugmentationEntry(lambda *a: _augmentation().translation(*a), "random shift by up to factor of "
                                     "the size", _FACTOR,
                                     with_boxes=lambda *a: _augmentation().translation_with_boxes(*a)),
    "zoom": AugmentationEntry(lambda *a: _augmentation().zoom(*a), "random zoom by up to factor", _FACTOR,
                              with_boxes=lambda *a: _augmentation().zoom_with_boxes(*a)),
    "brightness": AugmentationEntry(lambda *a: _augmentation().brightness(*a), "random brightness change", _FACTOR,
                                    "no"),
    "contrast": AugmentationEntry(lambda *a: _augmentation().contrast(*a), "random contrast change", _FACTOR, "no"),
    "color_shift": AugmentationEntry(lambda *a: _augmentation().color_shift(*a), "AlexNet-style random hue and "
                                     "saturation change (RGB only)", _FACTOR, "no"),
    "pca_color": AugmentationEntry(
        lambda *a: _augmentation().pca_color(*a), "AlexNet's PCA colour augmentation: add alpha_i * lambda_i * p_i, "
        "the training pixels' RGB principal components p_i and variances lambda_i (computed once from the training "
        "images), alpha_i drawn per image from N(0, std) (RGB only)", {"std": POSITIVE}, "no",
        per_image=lambda *a: _augmentation().pca_color_image(*a),
        learns_from_training_pixels=lambda *a: _augmentation().principal_components(*a)),
    "random_resized_crop": AugmentationEntry(
        lambda *a: [], "Inception-style crop: a random window of scale (fraction of the area) and ratio (width / "
        "height) ranges, resized to the model's input; per image, before batching (JPEGs decode only the window)",
        {"scale": _RANGE, "ratio": _RANGE}, crop_window=lambda *a: _augmentation().random_resized_crop_window(*a)),
}.items():
    AUGMENTATIONS.register(_name, _entry)

# -- test-time augmentations (`evaluate --tta`, `predict --tta`): views(images, image_hw) ---------------
for _name, _entry in {
    "flip": TestTimeEntry(lambda *a: _test_time().mirrored(*a), "the image and its mirror image"),
    "crop5": TestTimeEntry(lambda *a: _test_time().corners_and_centre(*a), "the four corners and the centre of the "
                           "image enlarged by 1/0.875", enlarge=0.875),
    "crop10": TestTimeEntry(lambda *a: _test_time().corners_and_centre_mirrored(*a), "crop5 and the mirror image "
                            "of each crop (AlexNet's ten views)", enlarge=0.875),
}.items():
    TEST_TIME_AUGMENTATIONS.register(_name, _entry)

# -- export formats (`export --format`): Keras's model.export, checked in each format's own runtime ------
for _name, _entry in {
    "saved_model": ExportEntry("tf_saved_model", "saved_model", lambda path: _serving_runtimes().saved_model(path),
                               "TensorFlow SavedModel (TF Serving), checked with tf.saved_model.load"),
    "onnx": ExportEntry("onnx", "model.onnx", lambda path: _serving_runtimes().onnx(path),
                        "ONNX, checked with onnxruntime"),
    "litert": ExportEntry("litert", "model.tflite", lambda path: _serving_runtimes().litert(path),
                          "LiteRT (TensorFlow Lite) flatbuffer, checked with the LiteRT interpreter"),
    "openvino": ExportEntry("openvino", "model.xml", lambda path: _serving_runtimes().openvino(path),
                            "OpenVINO IR (model.xml and model.bin), checked with the OpenVINO runtime"),
}.items():
    EXPORT_FORMATS.register(_name, _entry)

# -- reconstruction losses and classification metrics ----------------------------------------------
for _name, _entry in {
    "mse": LossEntry(lambda: _pixel_losses().mse_loss(), lambda *a: _pixel_losses().mse_per_pixel(*a),
                     "mean squared error"),
    "mae": LossEntry(lambda: _pixel_losses().mae_loss(), lambda *a: _pixel_losses().mae_per_pixel(*a),
                     "mean absolute error"),
    "binary_crossentropy": LossEntry(lambda: _pixel_losses().binary_crossentropy_loss(),
                                     lambda *a: _pixel_losses().binary_crossentropy_per_pixel(*a),
                                     "per-pixel binary cross-entropy (pixels in [0, 1])"),
    "gaussian_calibrated": LossEntry(lambda: _pixel_losses().calibrated_gaussian_loss(),
                                     lambda *a: _pixel_losses().calibrated_gaussian_per_pixel(*a),
                                     "Gaussian negative log-likelihood with the batch's mean squared error as its "
                                     "variance (Rybkin et al. 2021's calibrated decoder)"),
}.items():
    RECONSTRUCTION_LOSSES.register(_name, _entry)
METRICS.register("accuracy", OptionEntry(lambda: _classification_metrics().accuracy_metric(), "top-1 accuracy"))
METRICS.register("top5_accuracy",
                 OptionEntry(lambda: _classification_metrics().top5_accuracy_metric(), "top-5 accuracy"))

# -- adversarial losses, on the discriminator's logits (scores for hinge and WGAN-GP) -------------
for _name, _entry in {
    "minimax": AdversarialLossEntry(lambda *a: _adversarial_losses().sigmoid_discriminator(*a),
                                    lambda *a: _adversarial_losses().minimax_generator(*a),
                                    "the original game: G minimises log(1 - D(G(z))) (saturates when D wins)", True),
    "non_saturating": AdversarialLossEntry(lambda *a: _adversarial_losses().sigmoid_discriminator(*a),
                                           lambda *a: _adversarial_losses().non_saturating_generator(*a),
                                           "G maximises log D(G(z)) instead (the seeds' fix)", True),
    "hinge": AdversarialLossEntry(lambda *a: _adversarial_losses().hinge_discriminator(*a),
                                  lambda *a: _adversarial_losses().critic_generator(*a), "hinge loss on raw scores"),
    "wgan_gp": AdversarialLossEntry(lambda *a: _adversarial_losses().wasserstein_discriminator(*a),
                                    lambda *a: _adversarial_losses().critic_generator(*a),
                                    "Wasserstein critic with a gradient penalty"),
}.items():
    ADVERSARIAL_LOSSES.register(_name, _entry)


# -- trainers: `load()` returns the Trainer class ----------------------------------------------------
def _trainer_class_supervised():
    from .supervised.classification import SupervisedTrainer
    return SupervisedTrainer


def _trainer_class_reconstruction():
    from .generative.reconstruction import ReconstructionTrainer
    return ReconstructionTrainer


def _trainer_class_segmentation():
    from .supervised.segmentation import SegmentationTrainer
    return SegmentationTrainer


def _trainer_class_vae():
    from .generative.vae import VaeTrainer
    return VaeTrainer


def _trainer_class_metric():
    from .metric.embedding import MetricTrainer
    return MetricTrainer


def _trainer_class_adversarial():
    from .generative.adversarial import AdversarialTrainer
    return AdversarialTrainer


def _trainer_class_detection():
    from .detection.single_shot import DetectionTrainer
    return DetectionTrainer


for _entry in (
    TrainerEntry("supervised", "images and class labels; cross-entropy, accuracy",
                 _trainer_class_supervised, FIT_SETTINGS, SUPERVISED_OPTIONS),
    TrainerEntry("reconstruction", "the model learns to output its input (autoencoders); no labels needed",
                 _trainer_class_reconstruction, FIT_SETTINGS,
                 RECONSTRUCTION_OPTIONS),
    TrainerEntry("segmentation", "one class per pixel: sparse cross-entropy, pixel accuracy, mean IoU",
                 _trainer_class_segmentation, FIT_SETTINGS),
    TrainerEntry("vae", "variational autoencoder: reconstruction + KL divergence, logged separately",
                 _trainer_class_vae, FIT_SETTINGS, VAE_OPTIONS),
    TrainerEntry("metric", "an embedding learnt with a contrastive or triplet loss; open-set identification",
                 _trainer_class_metric, METRIC_SETTINGS, METRIC_OPTIONS),
    TrainerEntry("adversarial", "a generator and a discriminator (GAN), each with its own optimizer",
                 _trainer_class_adversarial, ADVERSARIAL_SETTINGS,
                 ADVERSARIAL_OPTIONS),
    TrainerEntry("detection", "a single-shot (SSD) or two-stage (Faster R-CNN) detector: anchors and regions "
                 "matched by IoU, class and box losses, per-class non-maximum suppression, COCO mAP",
                 _trainer_class_detection, FIT_SETTINGS, DETECTION_OPTIONS),
):
    TRAINERS.register(_entry.name, _entry)

# -- explanation methods (`explain --method`): heatmaps(explainable, feature_maps, classes) -------------
for _name, _entry in {
    "cam": ExplanationEntry(lambda *a: _explanations().cam(*a), "class activation map (Zhou et al. 2016): the dense "
                            "layer's class weights over the maps before global average pooling; exact, for networks "
                            "that end in that pooling and one dense layer"),
    "gradcam": ExplanationEntry(lambda *a: _explanations().gradcam(*a), "Grad-CAM (Selvaraju et al. 2017): the maps "
                                "weighted by the mean gradient of the class score, then ReLU; any classifier"),
    "gradcam_pp": ExplanationEntry(lambda *a: _explanations().gradcam_pp(*a), "Grad-CAM++ (Chattopadhay et al. "
                                   "2018): per-position weights from the gradient's powers, positive gradients only; "
                                   "any classifier"),
}.items():
    EXPLANATION_METHODS.register(_name, _entry)

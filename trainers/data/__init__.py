"""The data floor: sources of examples (arrays and files), image files, TFRecord shards, the
built-in datasets and their splits, the tf.data pipeline, augmentation, pseudo-labels, and the
statistics that normalization layers adapt from the training data. Imports no family of trainers."""

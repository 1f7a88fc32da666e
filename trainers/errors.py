"""The errors of training, under `builder.BlueprintError` so one `except` catches every error."""

from builder import BlueprintError


class DataError(BlueprintError):
    """Data that cannot feed the model; the message says what does not match and how to fix it."""

    label = "data error"


class TrainingFault(BlueprintError):
    """Training stopped on a fault (a non-finite loss); the message names where and what is kept."""

    label = "training stopped"

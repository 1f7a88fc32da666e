class DataError(Exception):
    """Data that cannot feed the model; the message says what does not match and how to fix it."""


class TrainingFault(Exception):
    """Training stopped on a fault (a non-finite loss); the message names where and what is kept."""

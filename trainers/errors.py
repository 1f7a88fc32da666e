class DataError(Exception):
    """Data that cannot feed the model; the message says what does not match and how to fix it."""

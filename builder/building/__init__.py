"""From expanded graphs to Functional `keras.Model`s, and weight copying between models."""

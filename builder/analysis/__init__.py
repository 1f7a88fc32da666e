"""What a built model costs: per-layer shapes, parameters, MACs, activation memory, receptive fields."""

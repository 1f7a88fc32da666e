"""Training strategies, data loading and run folders (see the README's training section)."""

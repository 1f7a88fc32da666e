"""After training: test-time augmentation (multi-crop), ensembles of runs, export to serving
formats and the runtimes that check them."""

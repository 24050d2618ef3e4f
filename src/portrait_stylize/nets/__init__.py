"""Network architectures and weight converters (no losses, no files)."""

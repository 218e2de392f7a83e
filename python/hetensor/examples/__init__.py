"""Runnable examples: ``python -m hetensor.examples.digits``."""

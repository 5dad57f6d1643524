"""Generators of the accuracy documents (docs/accuracy.md, training tables) from evaluation runs."""

"""DeepRec machine learning: data, models, training, evaluation, checkpoints and inference."""

__version__ = "0.1.0"

"""bench: how good is my GAN? Classifier-based and distribution metrics, tracked in MLflow."""

__version__ = "0.1.0"

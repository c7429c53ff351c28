"""genre-style: learn music-style embeddings from raw audio (Deep Softmax Autoencoder and baselines)."""

__version__ = "0.1.0"

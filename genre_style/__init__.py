"""genre-style: learn music-style embeddings from raw audio (Deep Softmax Autoencoder and baselines)."""

import os

from omegaconf import OmegaConf

# Before anything imports torch: MKL reads its reproducible mode from the environment when it starts.
# Before anything imports numba (librosa): a numba cache folder this process alone fills (genre_style/numba_cache.py).
from genre_style import numba_cache, reproducibility

numba_cache.claim()

__version__ = "0.1.0"

# ${cwd:} in configs: the folder the command runs in. Unlike ${hydra:runtime.cwd} it also resolves where
# Hydra has not set its runtime config yet (the basic sweeper's sweep.dir, hydra.compose in benchmarks).
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)
# ${reproducible:} in configs: trainer.deterministic's default, off with GENRE_STYLE_REPRODUCIBLE=0.
OmegaConf.register_new_resolver("reproducible", reproducibility.deterministic_mode, replace=True)

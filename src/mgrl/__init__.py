"""mgrl: multi-step and mixing meta-gradient A2C on Jumanji Snake (Bonnet et al. 2021, reproduced).

Modules: ``config`` (typed YAML config), ``env`` (vectorised Snake), ``networks`` (Haiku
actor-critic), ``losses`` (GAE, inner/outer losses), ``agent`` (K-step and mixing meta-gradients),
``train`` (compiled training, resumable driver), ``checkpoint``, ``metrics`` (Parquet columns),
``probe`` (meta-gradient estimator statistics).
"""

__version__ = "0.1.0"

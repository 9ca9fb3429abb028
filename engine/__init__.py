"""The training and evaluation core: the training loop, ``evaluate()`` and metrics, checkpoints,
the run directory, distributed and device helpers, model loading for evaluation and the
entry scripts' shared arguments. Nothing here imports ``analysis``.
"""

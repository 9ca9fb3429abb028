"""LSUN-bedroom multiple-cross experiment, stage 2 (released values)."""
learning_rate = 1e-3  # released lsun lr is 10x celeba's
lr_step_size = 2500   # and decays 5x less often

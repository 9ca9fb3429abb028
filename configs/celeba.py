"""CelebA multiple-cross experiment, stage 2 (released values; base defaults already match)."""
learning_rate = 1e-4  # released celeba lr
lr_step_size = 500    # StepLR every 500 iterations
metric = "acc"        # closed-set model selection by accuracy

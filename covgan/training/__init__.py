"""Training: the conditional GAN of Eq. 1 (a keras.Model with its own train_step), the
classifier, their runs (config, run folder, checkpoints, strategies) and callbacks."""

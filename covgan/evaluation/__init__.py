"""Scores: array metrics, the paper's GAN evaluation, and localisation of explanation maps
against lesion masks."""

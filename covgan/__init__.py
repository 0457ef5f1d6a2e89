"""covgan: visual explanations for CNN classifiers via latent traversal of a conditional GAN."""

__version__ = "0.1.0"

"""SavedModels for TF Serving. Kept free of imports so that covgan.serving can read
export.model_config (file names, models.config, versions) without loading Keras models."""

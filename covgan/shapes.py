"""The one definition of the image every covgan model takes and returns.

Images are float32 NHWC (B, IMAGE_SIZE, IMAGE_SIZE, 1) in [0, 1] everywhere: data, models,
explanations and the serving signatures all read these names.
"""

IMAGE_SIZE = 128
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

"""The generator's drawing options, free of TensorFlow so the command line can list them.

models/generator.py says what each does to the images.
"""

UPSAMPLING = ("nearest", "bilinear")  # nearest: the paper's; bilinear: no period-2 stripes
PADDING = ("zeros", "reflect")  # zeros: "same" convolutions; reflect: no edge signal

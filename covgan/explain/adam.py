"""Adam's update written out (Kingma & Ba 2015, bias-corrected), for the solvers that keep
their own moments: the batched inversion (per-row state inside a `tf.while_loop`) and pivotal
tuning (slot variables reused image after image). A Keras optimizer would own its slots and
its iteration count, which neither loop can reset or mask per row."""

import tensorflow as tf

# The moment decays and epsilon of the paper and of Keras' defaults.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


def adam_update(m, v, gradient, step, learning_rate, *, beta_1=BETA_1, beta_2=BETA_2,
                epsilon=EPSILON):
    """One Adam step: (new m, new v, the update to subtract from the parameters).

    Args:
        m, v: the first and second moments so far (zeros before the first step).
        gradient: this step's gradient, shaped like the parameters.
        step: this step's number, counting from 1 (a float tensor or number).
        learning_rate: the step size.
    """
    m = beta_1 * m + (1.0 - beta_1) * gradient
    v = beta_2 * v + (1.0 - beta_2) * tf.square(gradient)
    update = learning_rate * (m / (1.0 - beta_1**step)) / (
        tf.sqrt(v / (1.0 - beta_2**step)) + epsilon)
    return m, v, update

"""The conditional GAN of Eq. 1, as a keras.Model whose train_step does one D and one G step.

    min_G max_D  E[log D(x)] + E[log(1 - D(G(z1, y)))] - lambda_cls * E[log p_C(y | G(z1, y))]
                 [+ lambda_locality * E_{y=1}[L1 + TV of G(z1, z2) - G(z1, 0)]]
             [+ lambda_spread * E_{y=1}[overlap(|G(z1, z2) - G(z1, 0)|, |G(z1, z2') - G(z1, 0)|)]]

z1 ~ N(0, I); y ~ Bernoulli(positive_rate); z2 = 0 when y = 0 and z2 ~ N(0, I)
when y = 1. D is a plain real/fake critic, or, when it takes a second input, a
class-aware one that sees each real image's label and each generated image's y
(D(x, label), D(G(z1, y), y)); the frozen classifier C only feeds
class information back to G: it is called with training=False and never enters
a gradient list. The locality term (off unless lambda_locality > 0; not in the paper) asks
for the smallest, most compact change z2 can make that C still reads; the spread term (off
unless lambda_spread > 0; not in the paper) asks two disease codes z2, z2' for the same z1 to
change different places, so that where the change lies is something a code can choose and an
inversion can fit to a film's own finding.
"""

import keras
import tensorflow as tf
from keras import ops

from covgan.models import losses
from covgan.models.generator import code_sizes, drawn_with_counterparts
from covgan.training.augment import diff_augment


def sample_codes(seed_generator, batch_size, z1_dim, z2_dim, positive_rate=0.5):
    """(z1, z2, y) as G is trained on them: z1 ~ N(0, I), y ~ Bernoulli(positive_rate), and
    z2 ~ N(0, I) where y = 1, exactly 0 where y = 0. Also the encoder's training draws."""
    z1 = keras.random.normal((batch_size, z1_dim), seed=seed_generator)
    y = ops.cast(keras.random.uniform((batch_size,), seed=seed_generator) < positive_rate,
                 "int32")
    z2 = keras.random.normal((batch_size, z2_dim), seed=seed_generator)
    return z1, z2 * ops.cast(ops.expand_dims(y, -1), z2.dtype), y


@keras.saving.register_keras_serializable(package="covgan")
class ConditionalGAN(keras.Model):
    """G, D and the frozen classifier C, trained by `fit` on batches of real images.

    Args:
        generator: G, inputs [z1 (B, z1_dim), z2 (B, z2_dim)] -> images (B, 128, 128, 1).
        discriminator: D, images -> logits (B, 1), or [images, labels (B,)] -> logits for a
            class-aware critic (models.discriminator, class_aware=True).
        classifier: C, images -> probabilities (B, 2) (see models.classifier.adapt_classifier).
        positive_rate: P(y = 1) when sampling classes (0.5 balanced, or the data's prior).
        augment: apply DiffAugment to what D sees.
        seed: seed of the model's one SeedGenerator.

    Example:
        gan = ConditionalGAN(build_generator("tiny"), build_discriminator("tiny"), classifier)
        gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                    g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        gan.fit(dataset_of_images, epochs=10)
    """

    def __init__(self, generator, discriminator, classifier, *, positive_rate=0.5,
                 augment=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        # === Sub-models ===
        self.generator = generator
        self.discriminator = discriminator
        self.classifier = classifier
        self.classifier.trainable = False
        # === Config ===
        self.z1_dim, self.z2_dim = code_sizes(generator)
        self.positive_rate = float(positive_rate)
        self.augment = bool(augment)
        self.class_aware = len(discriminator.inputs) == 2
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Trackers, named exactly as train_step reports them ===
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.cls_loss_tracker = keras.metrics.Mean(name="cls_loss")
        self.cls_acc_tracker = keras.metrics.Mean(name="cls_acc")
        self.locality_tracker = keras.metrics.Mean(name="locality")
        self.spread_tracker = keras.metrics.Mean(name="spread")

    def compile(self, d_optimizer, g_optimizer, lambda_cls=1.0, lambda_locality=0.0,
                lambda_spread=0.0, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.lambda_cls = float(lambda_cls)
        self.lambda_locality = float(lambda_locality)
        self.lambda_spread = float(lambda_spread)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.cls_loss_tracker,
                self.cls_acc_tracker, self.locality_tracker, self.spread_tracker]

    def sample_latents(self, batch_size):
        """(z1, z2, y) for a batch: z2 is zero exactly where y = 0 (`sample_codes`)."""
        return sample_codes(self.seed_generator, batch_size, self.z1_dim, self.z2_dim,
                            self.positive_rate)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _critic(self, images, labels, training=True):
        """D's logits for `images`, shown `labels` when D is class-aware."""
        seen = diff_augment(images, self.seed_generator) if self.augment else images
        if self.class_aware:
            return self.discriminator([seen, ops.cast(labels, "int32")], training=training)
        return self.discriminator(seen, training=training)

    def train_step(self, data):
        # (images,), (images, labels) or (images, labels, weights): weights from --balance-by.
        if isinstance(data, (tuple, list)):
            real, real_labels = data[0], (data[1] if len(data) > 1 else None)
            real_weights = data[2] if len(data) > 2 else None
        else:
            real, real_labels, real_weights = data, None, None
        if self.class_aware and real_labels is None:
            raise ValueError("A class-aware discriminator needs (images, labels) batches.")
        batch = ops.shape(real)[0]
        global_batch = batch * tf.distribute.get_strategy().num_replicas_in_sync

        # Discriminator step: real images against a fresh generated batch.
        z1, z2, fake_labels = self.sample_latents(batch)
        fake = self.generator([z1, z2], training=True)
        with tf.GradientTape() as tape:
            real_logits = self._critic(real, real_labels)
            fake_logits = self._critic(fake, fake_labels)
            d_loss = losses.scale_to_global_batch(
                losses.nonsaturating_discriminator_loss(real_logits, fake_logits, real_weights),
                global_batch,
            )
            scaled = self.d_optimizer.scale_loss(d_loss)
        d_weights = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, d_weights), d_weights)

        # Generator step: fool D and make C see the intended class.
        z1, z2, y = self.sample_latents(batch)
        positive = ops.cast(y, "float32")
        locality = spread = ops.zeros((batch,), "float32")
        if self.lambda_spread:
            other_z2 = keras.random.normal(ops.shape(z2), seed=self.seed_generator)
            other_z2 = other_z2 * ops.expand_dims(positive, -1)
        with tf.GradientTape() as tape:
            if self.lambda_locality or self.lambda_spread:
                fake, counterpart = drawn_with_counterparts(self.generator, z1, z2,
                                                            training=True)
                change = fake - counterpart
                if self.lambda_locality:
                    locality = positive * losses.locality_penalty(change)
                if self.lambda_spread:
                    other = self.generator([z1, other_z2], training=True) - counterpart
                    spread = positive * losses.change_overlap(change, other)
            else:
                fake = self.generator([z1, z2], training=True)
            fake_logits = self._critic(fake, y)
            probabilities = self.classifier(fake, training=False)
            adversarial = losses.nonsaturating_generator_loss(fake_logits)
            cls_loss = losses.classifier_cross_entropy(y, probabilities)
            g_loss = losses.scale_to_global_batch(
                adversarial + self.lambda_cls * cls_loss + self.lambda_locality * locality
                + self.lambda_spread * spread,
                global_batch,
            )
            scaled = self.g_optimizer.scale_loss(g_loss)
        g_weights = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, g_weights), g_weights)

        predicted = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, y), "float32")
        self.d_loss_tracker.update_state(d_loss * ops.cast(global_batch / batch, "float32"))
        self.g_loss_tracker.update_state(g_loss * ops.cast(global_batch / batch, "float32"))
        self.cls_loss_tracker.update_state(ops.mean(cls_loss))
        self.cls_acc_tracker.update_state(ops.mean(correct))
        self.locality_tracker.update_state(ops.mean(locality))
        self.spread_tracker.update_state(ops.mean(spread))
        return {m.name: m.result() for m in self.metrics}

    def build_optimizers(self):
        """Creates both optimizers' slots now (needed before restoring their state)."""
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    # === Config ===
    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "positive_rate": self.positive_rate,
            "augment": self.augment,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "classifier"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "lambda_cls": self.lambda_cls,
            "lambda_locality": self.lambda_locality,
            "lambda_spread": self.lambda_spread,
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
            lambda_cls=config["lambda_cls"],
            lambda_locality=config.get("lambda_locality", 0.0),  # runs from before the lever
            lambda_spread=config.get("lambda_spread", 0.0),
        )
        self.build_optimizers()

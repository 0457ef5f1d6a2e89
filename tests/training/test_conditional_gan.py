import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_keras_round_trip

from covgan.models.classifier import build_classifier
from covgan.models.discriminator import build_discriminator
from covgan.models.generator import build_generator
from covgan.training.conditional_gan import ConditionalGAN


def make_gan(positive_rate=0.5, augment=False, z1_dim=16, z2_dim=4, class_aware=False,
             gated=False):
    generator = build_generator("tiny", z1_dim=z1_dim, z2_dim=z2_dim, gated_residual=gated,
                                seed=0)
    discriminator = build_discriminator("tiny", class_aware=class_aware, seed=1)
    gan = ConditionalGAN(generator, discriminator,
                         build_classifier("tiny", seed=2), positive_rate=positive_rate,
                         augment=augment, seed=3)
    # Eagerly: the same train_step, without 12 s of tracing per model; the traced step runs in
    # every train_gan test (tests/training/test_gan.py) and in the shared tiny run.
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), lambda_cls=1.0,
                run_eagerly=True)
    return gan


def real_batches(count=2, batch=8, label=None):
    images = np.random.default_rng(0).random((count * batch, 128, 128, 1)).astype("float32")
    if label is None:
        return tf.data.Dataset.from_tensor_slices(images).batch(batch)
    labels = np.full(count * batch, label, "int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def test_latents_follow_the_class_code():
    gan = make_gan()
    z1, z2, y = (np.asarray(t) for t in gan.sample_latents(400))
    assert z1.shape == (400, 16) and z2.shape == (400, 4)
    assert np.all(z2[y == 0] == 0) and np.all(np.abs(z2[y == 1]).sum(1) > 0)
    assert 0.4 < y.mean() < 0.6
    _, _, y = (np.asarray(t) for t in make_gan(positive_rate=1.0).sample_latents(50))
    assert y.min() == 1


@pytest.mark.parametrize("augment", [False, True])
def test_train_step_updates_g_and_d_and_never_the_classifier(augment):
    gan = make_gan(augment=augment)
    classifier_before = [w.numpy().copy() for w in gan.classifier.weights]
    generator_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    u_before = gan.discriminator.get_layer("down1").vector_u.numpy().copy()
    history = gan.fit(real_batches(), epochs=1, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "cls_loss", "cls_acc", "locality", "spread"}
    assert all(np.isfinite(v[0]) for v in history.values())
    assert history["locality"][-1] == 0.0  # off unless asked: Eq. 1 as the paper has it
    assert history["spread"][-1] == 0.0
    for before, after in zip(classifier_before, gan.classifier.weights):
        np.testing.assert_array_equal(before, after.numpy())  # bit-identical
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(generator_before,
                                                                gan.generator.trainable_weights))
    # D's optimizer stepped its kernels with gradients that reached them (the kernels' values
    # alone would not show it: spectral normalisation rewrites them on any training call).
    assert int(gan.d_optimizer.iterations.numpy()) == 2
    moments = [v for v in gan.d_optimizer.variables if v.path.endswith("kernel_momentum")]
    assert len(moments) == 6 and all(np.abs(m.numpy()).max() > 0 for m in moments)
    # Spectral norm's power iteration ran: D was called with training=True.
    assert not np.array_equal(u_before, gan.discriminator.get_layer("down1").vector_u.numpy())
    assert not any(w is v for w in gan.classifier.weights for v in gan.trainable_weights)


def test_trackers_are_named_as_reported():
    gan = make_gan()
    assert [m.name for m in gan.metrics] == ["d_loss", "g_loss", "cls_loss", "cls_acc",
                                             "locality", "spread"]


def test_save_and_load_keep_weights_and_optimizer_state(tmp_path):
    gan = make_gan()
    gan.fit(real_batches(), epochs=1, verbose=0)
    loaded = assert_keras_round_trip(gan, tmp_path / "gan.keras")
    for optimizer in ("d_optimizer", "g_optimizer"):
        before, after = getattr(gan, optimizer).variables, getattr(loaded, optimizer).variables
        assert int(getattr(loaded, optimizer).iterations.numpy()) == 2
        assert len(before) == len(after) > 2
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.lambda_cls == gan.lambda_cls and loaded.z2_dim == 4


@pytest.mark.parametrize("gated", [False, True])  # counterparts as rows of their own; one pass
def test_locality_and_spread_terms_are_tracked_when_asked(gated):
    # Both terms are off by default (the train-step test checks they are 0). The gated G also
    # gets the spread term: two codes' changes from its branch against one counterpart.
    spread = 2.0 if gated else 0.0
    local = make_gan(positive_rate=1.0, gated=gated)
    local.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), lambda_cls=1.0,
                  lambda_locality=5.0, lambda_spread=spread, run_eagerly=True)
    history = local.fit(real_batches(), epochs=1, verbose=0).history
    assert history["locality"][-1] > 0.0
    assert (0.0 < history["spread"][-1] <= 1.0) if gated else history["spread"][-1] == 0.0
    assert local.get_compile_config()["lambda_locality"] == 5.0
    assert local.get_compile_config()["lambda_spread"] == spread


def test_a_class_aware_critic_sees_real_labels_and_intended_classes(tmp_path):
    # Every generated image is meant positive and every real one is labelled positive, so
    # only the positive row of D's class embedding may get a gradient; a critic that ignored
    # the labels, or was shown other ones, would move the negative row too.
    gan = make_gan(positive_rate=1.0, class_aware=True)
    assert gan.class_aware
    history = gan.fit(real_batches(label=1), epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values())
    moments = [v for v in gan.d_optimizer.variables
               if "class_embed" in v.path and v.path.endswith("kernel_momentum")]
    assert len(moments) == 1
    negative_row, positive_row = np.abs(moments[0].numpy())
    assert negative_row.max() == 0.0 and positive_row.max() > 0.0
    loaded = assert_keras_round_trip(gan, tmp_path / "gan.keras")
    assert loaded.class_aware
    with pytest.raises(ValueError, match="needs \\(images, labels\\) batches"):
        make_gan(class_aware=True).fit(real_batches(), epochs=1, verbose=0)


def test_real_image_weights_reach_the_critics_loss():
    # Weights of one are the unweighted step bit for bit; weights of zero leave D only the
    # generated images to learn from, so it ends elsewhere (covgan train --balance-by).
    images = np.random.default_rng(0).random((8, 128, 128, 1)).astype("float32")
    labels = np.ones(8, "int32")

    def critic_after(*weights):
        gan = make_gan(positive_rate=1.0, class_aware=True)
        gan.fit(tf.data.Dataset.from_tensors((images, labels, *weights)), epochs=1, verbose=0)
        return [w.numpy() for w in gan.discriminator.trainable_weights]

    plain = critic_after()
    for a, b in zip(plain, critic_after(np.ones(8, "float32"))):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(plain, critic_after(np.zeros(8, "float32"))))

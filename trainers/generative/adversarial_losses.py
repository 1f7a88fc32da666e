"""The adversarial losses, on the discriminator's logits (scores for hinge and WGAN-GP): the
entries of `trainers.registries.ADVERSARIAL_LOSSES` (registered in `trainers.builtin`)."""

from __future__ import annotations

from keras import ops


def _bce_with_logits(target, logits):
    return ops.softplus(logits) - target * logits


def sigmoid_discriminator(real, fake, smoothing=0.0):
    """Real labels 1 - smoothing (one-sided), fake labels 0."""
    return ops.mean(_bce_with_logits(1.0 - smoothing, real)) + ops.mean(_bce_with_logits(0.0, fake))


def minimax_generator(fake):
    """Minimise log(1 - D(G(z))) = -softplus(logit): saturates when D wins."""
    return -ops.mean(ops.softplus(fake))


def non_saturating_generator(fake):
    """Maximise log D(G(z)) instead (the seeds' fix)."""
    return ops.mean(_bce_with_logits(1.0, fake))


def hinge_discriminator(real, fake, smoothing=0.0):
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


def wasserstein_discriminator(real, fake, smoothing=0.0):
    """The WGAN critic; the gradient penalty is added by the train step."""
    return ops.mean(fake) - ops.mean(real)


def critic_generator(fake):
    """Hinge and WGAN: raise the critic's score of fakes."""
    return -ops.mean(fake)


"""JMVAE-kl with a VAE-GAN image decoder (section 4.6.3, after Larsen et al. 2016).

The image decoder p(x|z) is also a GAN generator, judged by a discriminator D. One
forward pass per step gives three losses, each applied by its own Adam optimiser to its
own variables, as in the authors' code (masa-su/jmvae `main_mvaegan_kl_z_x.py`):

  1. encoders q(z|x,w), q(z|x), q(z|w) and the other decoders (p(w|z)): the JMVAE-kl loss
     ("loss"), its image term the likelihood chosen by `gan_likelihood`;
  2. the image decoder: gan_gamma * that image term + the generator loss
     -log D(x~) - log D(x_p) ("decoder_loss");
  3. the discriminator: -log D(x) - log(1 - D(x~)) - log(1 - D(x_p)) ("gan_discriminator");

with x a real image, x~ the mean of p(x|z), z ~ q(z|x,w) (a reconstruction) and x_p the
mean of p(x|z_p), z_p drawn as `gan_prior` says. The authors run three forward passes,
one before each update; here the three gradients come from one pass (one third of the
work), so the updates are simultaneous rather than in sequence.

Where Larsen et al. (the paper's reference) and the authors' code differ, the paper's
choice is the default: the image likelihood in the discriminator's feature space,
-log N(Dis_l(x) | Dis_l(x~), I) ("features"; the authors: "pixels", log p(x|z)); z_p from
N(0, I) ("normal"; the authors: "uniform" on (-1, 1)); the discriminator with BatchNorm
and ReLU ("paper"; the authors: leaky ReLU without BatchNorm); Adam beta1 0.9 (the
authors: 0.5).

The compiled optimiser (the training loop's) updates group 1 and is also the template of
the other two, which the model owns as attributes, so a checkpoint of the model holds
all three and a resumed run continues exactly. Inference (posterior, decode, ...) is
JMVAE-kl's: evaluation, serving, the projector and the figures see no difference.
"""

from __future__ import annotations

import math

import tensorflow as tf

from jmvae_tf.core.modalities import IMAGE
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models.base import LOSS
from jmvae_tf.models.jmvae import JMVAEKL
from jmvae_tf.networks import celeba

DECODER_LOSS = "decoder_loss"
DISCRIMINATOR_LOSS = "gan_discriminator"
GENERATOR_LOSS = "gan_generator"
# Fractions of each batch that D classifies right: real as real, the others as fake.
ACCURACY_TERMS = ("d_accuracy_real", "d_accuracy_reconstruction", "d_accuracy_prior")


class JMVAEKLGAN(JMVAEKL):
  """JMVAE-kl whose image decoder is also a GAN generator (see the module docstring); its
  options are a JMVAEKLGANOptions."""

  def __init__(self, modalities, options, architecture=None, name=None):
    images = [m for m in modalities if m.family == IMAGE]
    if len(images) != 1:
      raise ValueError(
        "the VAE-GAN needs exactly one modality of the image family, got "
        f"{[(m.name, m.family) for m in modalities]}"
      )
    architecture = architecture or celeba.CELEBA_CONV
    if architecture.discriminator is None:
      raise ValueError(
        f"architecture {architecture.name!r} has no discriminator; the VAE-GAN needs one "
        f"(e.g. {celeba.CELEBA_CONV.name!r})"
      )
    self.image_name = images[0].name
    super().__init__(modalities, options, architecture, name=name)
    self.discriminator = architecture.discriminator(
      images[0], "discriminator", options.gan_discriminator
    )
    self.decoder_optimizer = None
    self.discriminator_optimizer = None

  def incomplete_problem(self):
    # Its image decoder and discriminator train on every example's image (real, reconstructed
    # and fake): which of them an example without an image should feed is not derived here.
    return (
      "the VAE-GAN (jmvae_kl_gan) trains on complete examples only; on data with missing "
      "modalities train jmvae_kl (the same encoders and bound, without the GAN)"
    )

  @property
  def features_term(self) -> str:
    return f"nll_{self.image_name}_features"

  def loss_term_names(self):
    gan_terms = (self.features_term, GENERATOR_LOSS, DECODER_LOSS, DISCRIMINATOR_LOSS)
    return super().loss_term_names() + gan_terms + ACCURACY_TERMS

  # --- the objective -------------------------------------------------------------------------
  def sample_fake_latents(self, n, seed) -> tf.Tensor:
    """z_p of the generated fakes: N(0, I) or uniform on (-1, 1) (gan_prior)."""
    shape = tf.stack([n, self.latent_dim])
    seed = tf.cast(seed, tf.int64)
    if self.options.gan_prior == "uniform":
      return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0)
    return tf.random.stateless_normal(shape, seed)

  def discriminate(self, images, training=None):
    """(logit of D(images) [B], features Dis_l(images) [B, F]), in float32."""
    logit, features = self.discriminator(images, training=training)
    return tf.cast(logit, tf.float32), tf.cast(features, tf.float32)

  def loss_terms(self, batch, seed, training=None):
    posterior_seed, prior_seed = split_seed(seed, 2)
    forward = self.forward(batch, posterior_seed, training)
    image = self.image_name
    real = batch[image]
    reconstruction = forward.dists[image].mean()
    fake_z = self.sample_fake_latents(tf.shape(real)[0], prior_seed)
    fake = self.decode(fake_z, names=[image], training=training)[image].mean()
    logit_real, features_real = self.discriminate(real, training)
    logit_reconstruction, features_reconstruction = self.discriminate(reconstruction, training)
    logit_fake, _ = self.discriminate(fake, training)

    # -log N(Dis_l(x) | Dis_l(x~), I): Larsen et al.'s learned similarity.
    num_features = tf.cast(tf.shape(features_real)[-1], tf.float32)
    nll_features = 0.5 * tf.reduce_sum(
      tf.square(features_real - features_reconstruction), axis=-1
    ) + 0.5 * num_features * math.log(2 * math.pi)
    image_nll = nll_features if self.options.gan_likelihood == "features" else forward.nll[image]
    loss = self.total_loss(forward, {**forward.nll, image: image_nll})

    # -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
    generator = tf.nn.softplus(-logit_reconstruction) + tf.nn.softplus(-logit_fake)
    discriminator = (
      tf.nn.softplus(-logit_real)
      + tf.nn.softplus(logit_reconstruction)
      + tf.nn.softplus(logit_fake)
    )
    right = [logit_real > 0, logit_reconstruction < 0, logit_fake < 0]
    accuracy = {name: tf.cast(r, tf.float32) for name, r in zip(ACCURACY_TERMS, right)}
    return {
      **self.reported_terms(forward),
      self.features_term: nll_features,
      GENERATOR_LOSS: generator,
      DECODER_LOSS: self.options.gan_gamma * image_nll + generator,
      DISCRIMINATOR_LOSS: discriminator,
      **accuracy,
      LOSS: loss,
    }

  # --- the three variable groups and their optimisers ----------------------------------------
  @property
  def image_decoder_variables(self):
    return self.decoders[self.image_name].trainable_variables

  @property
  def discriminator_variables(self):
    return self.discriminator.trainable_variables

  @property
  def encoder_variables(self):
    """Everything else: the encoders q(z|x,w), q(z|x), q(z|w) and the other decoders."""
    others = {v.ref() for v in self.image_decoder_variables + self.discriminator_variables}
    return [v for v in self.trainable_variables if v.ref() not in others]

  def variable_groups(self):
    """(encoders + other decoders, image decoder, discriminator): what each optimiser owns."""
    return self.encoder_variables, self.image_decoder_variables, self.discriminator_variables

  def compile(self, optimizer="adam", jit_compile=False, **kwargs):
    """The compiled optimiser updates the encoders; the image decoder and the discriminator
    get copies of it (same class and settings, their own state). All three take beta_1 =
    gan_beta1 when they have one (Adam)."""
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    if hasattr(self.optimizer, "beta_1"):
      self.optimizer.beta_1 = self.options.gan_beta1
    config = self.optimizer.get_config()
    # Attributes of the model, so that a checkpoint of the model holds their state.
    self.decoder_optimizer = type(self.optimizer).from_config(
      {**config, "name": "decoder_optimizer"}
    )
    self.discriminator_optimizer = type(self.optimizer).from_config(
      {**config, "name": "discriminator_optimizer"}
    )
    for optimizer in self.extra_optimizers:
      # Made now, not inside a replica's first step (as the training loop does for its own):
      # the step counter and the learning-rate variable that train_step keeps in step.
      _ = optimizer.iterations, optimizer.learning_rate
    # XLA where the base model puts it: around the whole step (Keras') or, under a
    # distribution strategy, around each replica's forward and backward pass (here).
    self._gan_gradients_fn = self.per_replica(self._gan_loss_and_gradients)

  def optimizer_groups(self):
    return list(zip((self.optimizer,) + self.extra_optimizers, self.variable_groups()))

  @property
  def extra_optimizers(self):
    """The image decoder's and the discriminator's optimisers (made by compile)."""
    return (self.decoder_optimizer, self.discriminator_optimizer)

  def _follow_learning_rate(self):
    """The copies take the compiled optimiser's current learning rate (e.g. a resumed run's
    new --learning_rate, which the training loop sets on the compiled one)."""
    rate = self.optimizer.learning_rate
    for optimizer in self.extra_optimizers:
      if hasattr(optimizer.learning_rate, "assign") and not callable(rate):
        optimizer.learning_rate.assign(tf.cast(rate, optimizer.learning_rate.dtype))

  def _gan_loss_and_gradients(self, data, seed):
    with tf.GradientTape(persistent=True) as tape:
      terms = self.loss_terms(data, seed, training=True)
      # Per replica: sum over its examples / global batch (gradients are summed across them).
      losses = [
        tf.nn.compute_average_loss(terms[n]) for n in (LOSS, DECODER_LOSS, DISCRIMINATOR_LOSS)
      ]
    gradients = tuple(
      tape.gradient(loss, variables) for loss, variables in zip(losses, self.variable_groups())
    )
    del tape
    return terms, gradients

  def train_step(self, data):
    self._check_batch(data)
    seed = self.step_seed(self.optimizer.iterations, stream=0)
    terms, gradients = self._gan_gradients_fn(data, seed)
    self._follow_learning_rate()
    for (optimizer, variables), grads in zip(self.optimizer_groups(), gradients):
      optimizer.apply_gradients(zip(grads, variables))
    results = self._update_metrics(terms)
    results["kl_weight"] = tf.identity(self.kl_weight)
    return results

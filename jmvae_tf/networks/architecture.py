"""Architectures: the networks an objective asks for, by name (`run.json`'s "architecture").

An architecture builds Gaussian encoders over any set of modalities (one branch per modality,
concatenated, an optional trunk, mean and variance heads), a decoder per modality, the
hierarchy's conditionals and deterministic layers, and (for the VAE-GAN) a discriminator. What
a modality's branch and decoder are is decided by its network family (`Modality.family`),
never by its shape: each architecture has networks for the families it knows
(`FamilyNetworks`), and a family it does not know takes the networks registered for that
family (`register_family_networks`; the sequence family's, for captions, are the project's
own: `jmvae_tf.networks.sequence`), so a plug-in's family works with every architecture.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

import tf_keras as keras

from jmvae_tf.core import plugins
from jmvae_tf.core.likelihoods import FIXED_VARIANCE
from jmvae_tf.core.modalities import FAMILIES, SEQUENCE, Modality
from jmvae_tf.networks.blocks import Decoder, Discriminator, GaussianConditional, GaussianEncoder


@dataclasses.dataclass(frozen=True)
class FamilyNetworks:
  """How modalities of one network family are read and generated.

  branch(modality, name): the encoder's branch, the modality's values [B, ...] -> features
    [B, F] (the branches of an encoder's modalities are concatenated);
  decoder(modality, name, variance): p(modality | z), a `Decoder` ending in the modality's
    likelihood's distribution layer (`variance`: that of a fixed-variance Gaussian one).
  """

  branch: Callable[[Modality, str], keras.layers.Layer]
  decoder: Callable[[Modality, str, float], Decoder]


# Networks for a family, used by every architecture that has none of its own for it: the
# project's for captions (the sequence family, imported when first asked for) and plug-ins'.
FAMILY_NETWORKS = plugins.Registry(
  "family networks", {SEQUENCE: "jmvae_tf.networks.sequence:SEQUENCE_NETWORKS"}
)


def register_family_networks(
  family: str, branch: Callable, decoder: Callable, replace: bool = False
) -> FamilyNetworks:
  """The networks of modalities of `family` (a registered network family) in every
  architecture that has none of its own for it. Returns them."""
  FAMILIES.get(family)  # a PluginError for a family nobody registered
  networks = FamilyNetworks(branch, decoder)
  return FAMILY_NETWORKS.register(family, networks, plugins.calling_module(), replace=replace)


@dataclasses.dataclass(frozen=True)
class Architecture:
  """The network builders an objective asks for; one instance per data set's networks.

  families: {network family: FamilyNetworks} this architecture builds itself;
  conditional(latent_dim, name): p(z_l | z_{l+1}) of the hierarchy (or a conditional prior);
  features(name): the hierarchy's deterministic layer h_{l+1} = f(h_l);
  trunk(name): a layer after an encoder's concatenated branches (None: the heads read them);
  discriminator(image modality, name, style): the VAE-GAN's (None: the VAE-GAN refuses it);
  options: what it was built with ("key=value", sorted; run.json's "architecture_options"),
    for an architecture made by a builder that takes options (`get_architecture`).
  """

  name: str
  families: Mapping[str, FamilyNetworks]
  conditional: Callable[[int, str], GaussianConditional]
  features: Callable[[str], keras.layers.Layer]
  trunk: Optional[Callable[[str], keras.layers.Layer]] = None
  discriminator: Optional[Callable[[Modality, str, str], Discriminator]] = None
  options: Tuple[str, ...] = ()

  def networks_for(self, modality: Modality) -> FamilyNetworks:
    """The networks of `modality`'s family: this architecture's own, else the family's."""
    if modality.family in self.families:
      return self.families[modality.family]
    if modality.family in FAMILY_NETWORKS:
      return FAMILY_NETWORKS.get(modality.family)
    raise ValueError(
      f"architecture {self.name!r} has no networks for modality {modality.name!r} of the "
      f"{modality.family!r} family (it has {sorted(self.families)}); register them with "
      "jmvae_tf.register_family_networks"
    )

  def encoder(self, modalities: Sequence[Modality], latent_dim: int, name: str) -> GaussianEncoder:
    """q(z | modalities): each modality's branch, concatenated, the trunk, Gaussian heads."""
    trunk = self.trunk(f"{name}_trunk") if self.trunk is not None else None
    branches = {m.name: self.networks_for(m).branch(m, f"{m.name}_branch") for m in modalities}
    return GaussianEncoder(branches, latent_dim, trunk=trunk, name=name)

  def decoder(self, modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
    """p(modality | z) (`variance`: that of a fixed-variance Gaussian likelihood)."""
    return self.networks_for(modality).decoder(modality, name, variance)


ARCHITECTURES = plugins.Registry(
  "architecture",
  {
    "mnist_mlp": "jmvae_tf.networks.mnist:MNIST_MLP",
    "celeba_conv": "jmvae_tf.networks.celeba:CELEBA_CONV",
    # A builder: options (hidden units, channels, depth) -> Architecture.
    "generic": "jmvae_tf.networks.generic:generic_architecture",
  },
)


def register_architecture(
  architecture: Union[Architecture, Callable[..., Architecture]],
  replace: bool = False,
  name: Optional[str] = None,
):
  """Adds `architecture` under its name (a data set's `architecture`, run.json's): an
  Architecture, or a builder taking options (strings, as on the command line) that returns
  one, registered under `name`. Returns it."""
  if isinstance(architecture, Architecture):
    name = name or architecture.name
  elif not callable(architecture) or not name:
    raise TypeError(
      "register_architecture takes an Architecture, or a builder of one and its name, got "
      f"{architecture!r}"
    )
  return ARCHITECTURES.register(name, architecture, plugins.calling_module(), replace=replace)


def options_dict(options) -> dict:
  """Architecture options as a dict: a mapping as it is, "key=value" items split; a
  ValueError for an item that is not key=value."""
  if isinstance(options, Mapping):
    return dict(options)
  out = {}
  for item in options or ():
    key, sep, value = str(item).partition("=")
    if not sep or not key.strip():
      raise ValueError(f"architecture option {item!r} is not key=value")
    out[key.strip()] = value.strip()
  return out


def get_architecture(name: str, options=()) -> Architecture:
  """The architecture registered as `name` (a ValueError naming the choices if none is), built
  with `options` ({key: value} or "key=value" items) where it is a builder; options given to
  an architecture that takes none are a ValueError."""
  entry = ARCHITECTURES.get(name)
  given = options_dict(options)
  if isinstance(entry, Architecture):
    if given:
      raise ValueError(f"architecture {name!r} takes no options, got {sorted(given)}")
    return entry
  return entry(**given)

"""The SavedModel's signatures for TF Serving: named functions over plain tensors.

A trained model becomes a `tf.Module` whose methods are `tf.function`s with fixed
input signatures; `export` writes it in TF Serving's layout BASE/NAME/VERSION/.
The SavedModel holds only the graph and the variables (no Python objects of this
project), so anything with TensorFlow alone (TF Serving, `tf.saved_model.load`,
`saved_model_cli`) can load it.

The signatures come from the model's inference API (`jmvae_tf.models.base`), so
every model exports what it can do and nothing is decided by its class. With two
modalities x (the first of the config, e.g. image) and w (the second, e.g. label):

  encode              (x, w)                     -> q(z|x,w): mean, variance (hierarchical:
                                                    also mean_z2, variance_z2, ...)
  encode_<m>          (m[, seed, num_steps])     -> the Gaussian over z from m alone, for each
                                                    modality m the model can infer z from:
                                                    JMVAE-kl's unimodal encoder; JMVAE /
                                                    hierarchical: the other modality imputed by
                                                    num_steps rounds of iterative sampling;
                                                    CVAE/CMMA: the prior given the condition
  generate_x_from_w   (w, seed[, num_steps])     -> z from w as encode_w, then p(x|z[,w]):
  generate_w_from_x   (x, seed[, num_steps])        parameters, a sample, and z
  reconstruct         (x, w, seed)               -> z ~ q(z|x,w), then each generated p(.|z)
  sample              (num_samples, seed)        -> z from the prior, then each p(.|z)
                                                    (models without a condition only)
  serving_default     = generate_x_from_w if the model has it, else generate_w_from_x

  limits              ()                         -> max_batch_size, max_num_samples, max_num_steps

With more modalities (e.g. digit, fashion, label) each proper subset S the model can infer z
from has encode_<S> and generate_<t>_from_<S> for each generated t not in S, S being its
names in the data set's order joined by "_and_" (encode_digit_and_fashion,
generate_label_from_digit_and_fashion); subsets come smallest first, in the data set's order
within a size. serving_default is the first modality generated from all the others where the
model can, else the first generate_ signature.

`num_steps` is an input exactly where the model infers by iterative sampling.
Seeds are int64 [2] stateless seeds: the same inputs and seed give the same outputs.
Outputs are named after the modality: `<name>_probs` (Bernoulli / categorical) or
`<name>_mean` and `<name>_stddev` (Gaussian), and `<name>_sample`; latents `z`,
`mean`, `variance`.

A caption (a text modality, with its vocabulary) is a string in and a string out: its input
is a batch of captions (tf.string [B]), read into tokens inside the graph by the
vocabulary's own TextVectorization, which the SavedModel holds; a generated caption comes as
`<name>_text` (the most probable word at each position, up to the end of the sentence) and
`<name>_sample_text` (the drawn tokens), beside its `<name>_probs` and `<name>_sample`. A
caption of more than T - 1 words is cut to T - 1, as in training.

Every input is checked in the graph before any work (an InvalidArgumentError whose text
TF Serving returns to the client): the batch size, `num_samples` and `num_steps` against
the export's ServingLimits (recorded in the `limits` signature and
assets.extra/limits.json), and each modality's values against what its likelihood models
(`Likelihood.domain`, jmvae_tf/core/likelihoods.py): finite; Bernoulli in [0, 1]; tanh-mean
Gaussian in [-1, 1]; categorical one-hot.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from jmvae_tf.core import gaussian
from jmvae_tf.core.modalities import Modality
from jmvae_tf.core.options import ServingLimits
from jmvae_tf.core.sampling import split_seed
from jmvae_tf.models import MultimodalVAE

Batch = Dict[str, tf.Tensor]
SEED_SPEC = tf.TensorSpec([2], tf.int64, name="seed")
NUM_STEPS_SPEC = tf.TensorSpec([], tf.int32, name="num_steps")
NUM_SAMPLES_SPEC = tf.TensorSpec([], tf.int32, name="num_samples")
DEFAULT_SIGNATURE = "serving_default"
LIMITS_SIGNATURE = "limits"
LIMITS_FILE = "limits.json"  # in assets.extra/


def limits_json(limits: ServingLimits) -> str:
  return json.dumps(dataclasses.asdict(limits), indent=2) + "\n"


# --- plain functions over the model's public methods -------------------------------------


def prefixed(name: str, outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {f"{name}_{key}": value for key, value in outputs.items()}


def decode_outputs(
  model: MultimodalVAE, z: tf.Tensor, batch: Batch, names: Sequence[str], seed: tf.Tensor
) -> Dict[str, tf.Tensor]:
  """Parameters and a sample of p(name|z[, condition]) for each of `names`, and z."""
  specs = {m.name: m for m in model.modality_specs}
  dists = model.decode(z, batch, names=names)
  outputs = {"z": z}
  for name, s in zip(names, split_seed(seed, len(names))):
    generated = specs[name].likelihood.serving_outputs(dists[name], s)
    vocabulary = specs[name].text
    if vocabulary is not None:  # a caption: also as words
      generated["text"] = vocabulary.decode(generated["probs"])
      generated["sample_text"] = vocabulary.decode(generated["sample"])
    outputs.update(prefixed(name, generated))
  return outputs


def check_same_batch(*tensors: tf.Tensor) -> Tuple[tf.Tensor, ...]:
  """The inputs, passed through an InvalidArgumentError that says what is wrong when
  their batch sizes differ (instead of a shape error inside the encoder's concatenation).
  Callers must use the returned tensors, which wait for the check.
  """
  first = tensors[0]
  checks = [
    tf.debugging.assert_equal(
      tf.shape(first)[0],
      tf.shape(t)[0],
      message="every input must have the same batch size (dimension 0)",
    )
    for t in tensors[1:]
  ]
  return tuple(checked(t, *checks) for t in tensors)


def checked(tensor: tf.Tensor, *checks) -> tf.Tensor:
  """`tensor`, made to wait for `checks` (assert ops): a bare assert in a graph is not
  ordered before the stateless ops that read the same input, whose own, less clear
  error could come first."""
  with tf.control_dependencies(checks):
    return tf.identity(tensor)


# --- the exported module ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SignatureSpec:
  """One exported method: its Python body, input signature and a line of documentation."""

  name: str
  fn: Callable
  input_signature: List[tf.TensorSpec]
  doc: str


def modality_spec(modality: Modality) -> tf.TensorSpec:
  """A served input: the modality's values, or a caption string for a text modality."""
  if modality.vocabulary is not None:
    return tf.TensorSpec((None,), tf.string, name=modality.name)
  return tf.TensorSpec((None,) + modality.shape, tf.float32, name=modality.name)


def from_subset(model: MultimodalVAE, given: Sequence[Modality]) -> Tuple[Callable, List, str]:
  """fn(values, seed, num_steps) -> (batch, mean, variance) of z from the modalities `given`
  alone, and the extra inputs the signatures take (num_steps only where the model samples
  iteratively)."""
  names = [m.name for m in given]
  iterative = model.uses_iterative_sampling(names)

  def infer(values, seed, num_steps):
    batch = dict(zip(names, check_same_batch(*values)))
    mean, variance = model.posterior(batch, names, seed, num_steps)
    return batch, mean, variance

  how = model.describe_inference(names, "num_steps")
  return infer, ([NUM_STEPS_SPEC] if iterative else []), how


def _subset(modalities: Sequence[Modality], given) -> str:
  return "_and_".join(m.name for m in modalities if m.name in given)


def encode_signature_name(modalities: Sequence[Modality], given) -> str:
  """encode_<a>_and_<b>: z from the modalities `given` (in the modalities' order)."""
  return f"encode_{_subset(modalities, given)}"


def generate_signature_name(modalities: Sequence[Modality], given, target: str) -> str:
  """generate_<target>_from_<a>_and_<b>; for two modalities the paper's x and w:
  generate_x_from_w, generate_w_from_x."""
  names = [m.name for m in modalities]
  if len(names) == 2:
    symbols = dict(zip(names, ("x", "w")))
    return f"generate_{symbols[target]}_from_{symbols[given[0]]}"
  return f"generate_{target}_from_{_subset(modalities, given)}"


def model_signatures(model: MultimodalVAE, modalities: Sequence[Modality]) -> List[SignatureSpec]:
  """Every signature the model supports (see the module docstring), in a stable order: the
  joint encoder, then for each set of modalities z can be inferred from (smallest first; for
  two modalities w before x, as the paper writes x from w first) its encode_ and generate_
  signatures, then reconstruct and sample."""
  # Inputs and names follow the data set's order (x, w for two), not the model's, which for
  # a one-way model starts with its target.
  names = tuple(m.name for m in modalities)
  by_name = {m.name: m for m in modalities}
  specs = []

  def encode(*values):
    batch = dict(zip(names, check_same_batch(*values)))
    layers = model.posterior_layers(batch, names)
    outputs = {"mean": layers[0][0], "variance": layers[0][1]}
    for l, (mean, variance) in enumerate(layers[1:], start=2):
      outputs[f"mean_z{l}"], outputs[f"variance_z{l}"] = mean, variance
    return outputs

  specs.append(
    SignatureSpec(
      "encode",
      encode,
      [modality_spec(by_name[n]) for n in names],
      f"q(z|{','.join(names)}): mean and variance of each latent layer",
    )
  )
  subsets = [
    tuple(n for n in names if n in s) for s in model.inference_subsets() if len(s) < len(names)
  ]
  if len(names) == 2:
    subsets.sort(key=lambda s: names.index(s[0]), reverse=True)
  else:
    subsets.sort(key=lambda s: (len(s), [names.index(n) for n in s]))
  for given in subsets:
    specs.extend(subset_signatures(model, modalities, [by_name[n] for n in given]))

  def reconstruct(*values):
    *values, seed = values
    batch = dict(zip(names, check_same_batch(*values)))
    z_seed, out_seed = split_seed(seed, 2)
    mean, variance = model.posterior(batch, names)
    z = gaussian.sample(mean, variance, z_seed)
    return decode_outputs(model, z, batch, model.generated_modalities, out_seed)

  specs.append(
    SignatureSpec(
      "reconstruct",
      reconstruct,
      [modality_spec(by_name[n]) for n in names] + [SEED_SPEC],
      f"z ~ q(z|{','.join(names)}), then each generated modality's p(.|z)",
    )
  )

  if not model.conditioning_modalities:

    def sample(num_samples, seed):
      z_seed, out_seed = split_seed(seed, 2)
      z = model.sample_prior(num_samples, z_seed)
      return decode_outputs(model, z, {}, model.generated_modalities, out_seed)

    specs.append(
      SignatureSpec(
        "sample",
        sample,
        [NUM_SAMPLES_SPEC, SEED_SPEC],
        "z from the prior, then every modality's p(.|z)",
      )
    )
  return specs


def subset_signatures(
  model: MultimodalVAE, modalities: Sequence[Modality], given: Sequence[Modality]
) -> List[SignatureSpec]:
  """encode_<given> and a generate_ signature for each modality the model generates that is
  not given (a function, so the closures bind this subset; default arguments would become
  tf.function arguments)."""
  infer, extra, how = from_subset(model, given)
  iterative = bool(extra)
  count = len(given)
  given_names = [m.name for m in given]
  inputs = [modality_spec(m) for m in given]
  about = ",".join(given_names)

  def encode_subset(*args):
    values, rest = args[:count], args[count:]
    seed, num_steps = (rest[0], rest[1]) if iterative else ((0, 0), 0)
    _, mean, variance = infer(values, seed, num_steps)
    return {"mean": mean, "variance": variance}

  specs = [
    SignatureSpec(
      encode_signature_name(modalities, given_names),
      encode_subset,
      inputs + ([SEED_SPEC] + extra if iterative else []),
      f"the Gaussian over z from {about} alone: {how}",
    )
  ]

  def generating(target: str):
    def generate(*args):
      values, (seed, *rest) = args[:count], args[count:]
      num_steps = rest[0] if iterative else 0
      infer_seed, z_seed, out_seed = split_seed(seed, 3)
      batch, mean, variance = infer(values, infer_seed, num_steps)
      z = gaussian.sample(mean, variance, z_seed)
      return decode_outputs(model, z, batch, [target], out_seed)

    return generate

  for target in model.generated_modalities:
    if target not in given_names:
      specs.append(
        SignatureSpec(
          generate_signature_name(modalities, given_names, target),
          generating(target),
          inputs + [SEED_SPEC] + extra,
          f"p({target}|z), {how}: parameters, a sample and z",
        )
      )
  return specs


def _require(condition: tf.Tensor, message: str, *values: tf.Tensor):
  """An assert op failing with `message` ("{}" filled with `values`), one line; TF
  Serving returns it as "assertion failed: [message]"."""
  text = tf.strings.format(message, values) if values else message
  return tf.debugging.Assert(condition, [text])


def batch_size_check(value: tf.Tensor, name: str, limits: ServingLimits):
  """An assert that the batch of input `name` is within the export's max_batch_size."""
  batch = tf.shape(value)[0]
  return _require(
    batch <= limits.max_batch_size,
    f"{name}: batch size {{}} is over the limit of this export, {limits.max_batch_size} "
    "(max_batch_size); split the request",
    batch,
  )


def modality_checks(value: tf.Tensor, modality: Modality, limits: ServingLimits) -> List:
  """Asserts: batch size within the limit, then every value finite, then in its domain
  (ordered, so a NaN is reported as a NaN and not as out of range)."""
  name = modality.name
  size = batch_size_check(value, name, limits)
  with tf.control_dependencies([size]):
    finite = _require(
      tf.reduce_all(tf.math.is_finite(value)), f"{name}: values must be finite (no NaN or inf)"
    )
  with tf.control_dependencies([finite]):
    domain = modality.likelihood.domain(name, value)  # what its likelihood models
    if domain is None:
      return [size, finite]
    condition, message, values = domain
    return [size, finite, _require(condition, message, *values)]


def caption_checks(captions: tf.Tensor, encoder, name: str, limits: ServingLimits):
  """The tokens of `captions` [B] (tf.string), made to wait for asserts: the batch size within
  the limit and not 0, and every caption holding a word, and one the vocabulary has."""
  batch = tf.shape(captions)[0]
  size = batch_size_check(captions, name, limits)
  # TensorFlow's 1-D convolutions fail on an empty batch, with a kernel's message: say it.
  some = _require(batch > 0, f"{name}: the request holds no caption; send at least one")
  with tf.control_dependencies([size, some]):
    values, words, unknown = encoder.encode(captions)
  empty = tf.equal(words, 0)
  only_unknown = tf.logical_and(words > 0, tf.equal(unknown, words))
  empty_check = _require(
    tf.logical_not(tf.reduce_any(empty)),
    f"{name}: caption {{}} is empty (no word once punctuation goes)",
    _first(empty),
  )
  known = _require(
    tf.logical_not(tf.reduce_any(only_unknown)),
    f"{name}: caption {{}} ({{}}) has only words the vocabulary does not have",
    _first(only_unknown),
    tf.boolean_mask(captions, only_unknown)[:1],
  )
  return checked(values, size, some, empty_check, known)


def _first(flags: tf.Tensor) -> tf.Tensor:
  """The index of the first true of `flags` [B] (B where none is, an empty batch too)."""
  return tf.argmax(tf.cast(tf.concat([flags, [True]], 0), tf.int32))


def count_checks(value: tf.Tensor, name: str, limit: int) -> List:
  return [
    _require(
      (value >= 0) & (value <= limit),
      f"{name} = {{}} is out of range: it must be in [0, {limit}] (the limit of this export)",
      value,
    )
  ]


def with_input_checks(
  fn: Callable,
  input_signature: Sequence[tf.TensorSpec],
  modalities: Sequence[Modality],
  limits: ServingLimits,
  encoders: Optional[Dict[str, object]] = None,
) -> Callable:
  """`fn` that first checks every input: its shape against its spec (a SavedModel
  signature checks dtypes but not shapes: "Shape of tensor label [2,9] is not compatible
  with expected shape [?,10]" instead of an error deep inside a layer), then its values
  (modality_checks, count_checks); captions are read into tokens (`encoders`: each text
  modality's CaptionEncoder) and checked (caption_checks). `fn` sees only inputs that have
  passed."""
  encoders = encoders or {}
  by_name = {m.name: m for m in modalities}
  counts = {
    NUM_STEPS_SPEC.name: limits.max_num_steps,
    NUM_SAMPLES_SPEC.name: limits.max_num_samples,
  }

  def run_checked(*args):
    inputs = []
    for arg, spec in zip(args, input_signature):
      arg = tf.ensure_shape(arg, spec.shape)
      if spec.name in encoders:
        arg = caption_checks(arg, encoders[spec.name], spec.name, limits)
      elif spec.name in by_name:
        arg = checked(arg, *modality_checks(arg, by_name[spec.name], limits))
      elif spec.name in counts:
        arg = checked(arg, *count_checks(arg, spec.name, counts[spec.name]))
      inputs.append(arg)
    return fn(*inputs)

  return run_checked


def default_signature(function_names: Sequence[str], modalities: Sequence[Modality]) -> str:
  """serving_default: the first modality generated from all the others where the model can
  (two modalities: generate_x_from_w), else the first generate_ signature."""
  names = [m.name for m in modalities]
  first = generate_signature_name(modalities, names[1:], names[0])
  generate = [n for n in function_names if n.startswith("generate_")]
  return first if first in function_names else (generate[0] if generate else function_names[0])


class ServingModule(tf.Module):
  """The exported object: the model's variables and one tf.function per signature.

  Only the variables are tracked (not the Keras model), so the SavedModel holds no
  Keras metadata and loads with TensorFlow alone.
  """

  def __init__(
    self,
    model: MultimodalVAE,
    modalities: Optional[Sequence[Modality]] = None,
    limits: Optional[ServingLimits] = None,
  ):
    super().__init__(name="jmvae_serving")
    self.serving_limits = limits or ServingLimits()
    modalities = tuple(modalities or model.data_modalities)
    specs = model_signatures(model, modalities)
    self.model_variables = list(model.variables)
    # Each caption's vocabulary (its lookup table) travels inside the SavedModel.
    self.caption_encoders = {m.name: m.text.encoder() for m in modalities if m.text is not None}
    self.signature_docs = {}
    self.signature_inputs = {}
    self.function_names = []
    for spec in specs:
      setattr(
        self,
        spec.name,
        tf.function(
          with_input_checks(
            spec.fn, spec.input_signature, modalities, self.serving_limits, self.caption_encoders
          ),
          input_signature=spec.input_signature,
          autograph=False,
        ),
      )
      self.signature_docs[spec.name] = spec.doc
      self.signature_inputs[spec.name] = [s.name for s in spec.input_signature]
      self.function_names.append(spec.name)
    self.default_signature = default_signature(self.function_names, modalities)
    limit_values = dataclasses.asdict(self.serving_limits)
    # The bounds travel with the export: a client can ask for them.
    setattr(
      self,
      LIMITS_SIGNATURE,
      tf.function(
        lambda: {k: tf.constant(v, tf.int32) for k, v in limit_values.items()},
        input_signature=[],
        autograph=False,
      ),
    )
    self.signature_docs[LIMITS_SIGNATURE] = "the most one request may ask: " + ", ".join(
      f"{k}={v}" for k, v in limit_values.items()
    )
    self.signature_inputs[LIMITS_SIGNATURE] = []
    self.function_names.append(LIMITS_SIGNATURE)

  def input_names(self, signature: str) -> List[str]:
    """The input names of a signature, as a SavedModel client passes them."""
    return list(
      self.signature_inputs[self.default_signature if signature == DEFAULT_SIGNATURE else signature]
    )

  def run(self, signature: str, inputs: Dict[str, object]) -> Dict[str, tf.Tensor]:
    """Calls a signature in-process with inputs keyed by name, as `loaded.signatures[...]` takes them."""
    name = self.default_signature if signature == DEFAULT_SIGNATURE else signature
    names = self.input_names(name)
    unknown = set(inputs) - set(names)
    if unknown:
      raise ValueError(f"{signature} takes {names}; got unknown inputs {sorted(unknown)}")
    return getattr(self, name)(*[inputs[n] for n in names])

  def signatures(self) -> Dict[str, Callable]:
    """SavedModel signatures: every method plus `serving_default`."""
    functions = {name: getattr(self, name).get_concrete_function() for name in self.function_names}
    functions[DEFAULT_SIGNATURE] = functions[self.default_signature]
    return functions

"""jmvae-tf: Joint Multimodal VAEs (JMVAE, JMVAE-kl, hierarchical JMVAE) and the paper's
baselines (CVAE, CMMA) in TensorFlow 2 / tf-keras with TFP decoders.

The public API, a researcher's day (docs/PYTHON_API.md walks through it):

  import jmvae_tf as jt
  from pipelines import registry                    # the data sets read from files, by name
  data = registry.make_dataset("mnist", data_dir, num_train=1000)
  model = jt.make_model("jmvae_kl", data, latent_dim=16)
  jt.train(model, data, "runs/demo", epochs=2, warmup_epochs=1)
  mean, variance = model.posterior(batch, given=["label"])
  digits = model.generated_mean(batch, "image", given=["label"])
  record = jt.evaluate(model, data, num_test=500)
  jt.export(model, "exports")
  model = jt.load("runs/demo")

Declaring data
  Modality             a modality: name, likelihood kind, event shape, network family
  DataSet              the contract every data set fulfils (what train, evaluate, ... read)
  ArrayDataSet         a data set of arrays in memory, {modality name: array} per split
  PipelineDataSet      a data set of your own tf.data pipelines of batches
  OwnDataSet           your own values by kind (image, class, attributes, vector), as you
                       keep them: uint8 pixels, class names, 0/1 columns; absences counted
                       (--dataset=files reads the same from CSV, JSONL, .npz and images)
  DataError            bad data, said in one line
Models
  make_model           a registered model by name for a data set, with its options
  JMVAE, JMVAEKL, HierarchicalJMVAE, CVAE, CMMA, JMVAEKLGAN   the objectives
  MultimodalVAE        their base: the inference API (posterior, generated_mean, decode,
                       sample_prior, can_infer, inference_subsets, ...)
  ModelOptions, JMVAEKLOptions, HierarchicalJMVAEOptions, ConditionalOptions,
  JMVAEKLGANOptions    each model's options (the paper's choices by default)
  ModelConfig          what run.json holds: a model, its options, modalities, networks
Training
  train                train in memory or in a model directory (checkpoints, exact resume,
                       TensorBoard, the KL warm-up), on a DataSet, arrays or a tf.data pipeline
  TrainConfig          the training settings (the paper's by default)
  TrainResult          the trained model, its history and the epoch it started from
Trained runs
  load                 a model directory's model, its weights restored
  load_run             a model directory, checked: its config, training record, checkpoint
Evaluation
  evaluate             the conditional log-likelihoods (eq 11, IWAE), attribute accuracy and
                       coherence of a model on a data set's test split
Serving and inspection
  export               a SavedModel for TF Serving
  ServingLimits        what one request may ask of an export
  write_embeddings     latent embeddings for the TensorBoard Projector
  draw_figures         the paper's figures (3-9) as PNG and TensorBoard images
  FigureSettings       what those figures show
  write_captions       a text model's captions: those generated from test images, images
                       generated from captions (PNG) and the caption tables (Markdown)
Plug-in points (from your own module; `--plugins=MODULE` for the runners)
  register_likelihood  a likelihood kind (subclass Likelihood)
  Likelihood           the base of likelihood kinds
  register_family      a network family of modalities (e.g. "sequence")
  register_family_networks   the networks (encoder branch, decoder) of a family
  register_architecture      an architecture (Architecture, FamilyNetworks)
  Architecture, FamilyNetworks   what an architecture builds, per family
  register_model       an objective (a MultimodalVAE subclass) and its options

Everything else lives in the packages, one job each: core (the vocabulary), networks, models,
training, evaluation, serving, inspection (docs/ARCHITECTURE.md). Names are imported when first
used, so `import jmvae_tf` is quick and TensorFlow loads only when something needs it.
"""

import importlib

__version__ = "0.1.0"

# Each public name and the module it lives in.
_HOMES = {
  "Modality": "jmvae_tf.core.modalities",
  "DataSet": "jmvae_tf.core.data",
  "ArrayDataSet": "jmvae_tf.core.data",
  "PipelineDataSet": "jmvae_tf.core.data",
  "OwnDataSet": "jmvae_tf.core.own_data",
  "DataError": "jmvae_tf.core.data",
  "make_model": "jmvae_tf.models.config",
  "JMVAE": "jmvae_tf.models.jmvae",
  "JMVAEKL": "jmvae_tf.models.jmvae",
  "HierarchicalJMVAE": "jmvae_tf.models.hierarchical",
  "CVAE": "jmvae_tf.models.conditional",
  "CMMA": "jmvae_tf.models.conditional",
  "JMVAEKLGAN": "jmvae_tf.models.jmvae_kl_gan",
  "MultimodalVAE": "jmvae_tf.models.base",
  "ModelOptions": "jmvae_tf.core.options",
  "JMVAEKLOptions": "jmvae_tf.core.options",
  "HierarchicalJMVAEOptions": "jmvae_tf.core.options",
  "ConditionalOptions": "jmvae_tf.core.options",
  "JMVAEKLGANOptions": "jmvae_tf.core.options",
  "ModelConfig": "jmvae_tf.models.config",
  "train": "jmvae_tf.training.driver",
  "TrainConfig": "jmvae_tf.core.options",
  "TrainResult": "jmvae_tf.training.driver",
  "load": "jmvae_tf.training.run_dir",
  "load_run": "jmvae_tf.training.run_dir",
  "evaluate": "jmvae_tf.evaluation.report",
  "export": "jmvae_tf.serving.export",
  "ServingLimits": "jmvae_tf.core.options",
  "write_embeddings": "jmvae_tf.inspection.projector",
  "draw_figures": "jmvae_tf.inspection.paper_figures",
  "FigureSettings": "jmvae_tf.inspection.paper_figures",
  "write_captions": "jmvae_tf.inspection.captions",
  "register_likelihood": "jmvae_tf.core.likelihoods",
  "Likelihood": "jmvae_tf.core.likelihoods",
  "register_family": "jmvae_tf.core.modalities",
  "register_family_networks": "jmvae_tf.networks.architecture",
  "register_architecture": "jmvae_tf.networks.architecture",
  "Architecture": "jmvae_tf.networks.architecture",
  "FamilyNetworks": "jmvae_tf.networks.architecture",
  "register_model": "jmvae_tf.models.registry",
}
__all__ = list(_HOMES)


def __getattr__(name):
  if name not in _HOMES:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  value = getattr(importlib.import_module(_HOMES[name]), name)
  globals()[name] = value  # found once
  return value


def __dir__():
  return sorted(list(globals()) + __all__)

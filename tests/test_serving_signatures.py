"""Tests of the SavedModel export (jmvae_tf.serving, runners.export, the client example).

The exports are loaded back in a subprocess that cannot import this project (cwd
and sys.path without the repository, PYTHONPATH cleared), as TF Serving would:
every signature must give the in-process model's outputs for the same inputs and
seed, and wrong inputs must get TensorFlow's errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_runs import train_tiny

from jmvae_tf.core import files, gaussian, options, sampling
from jmvae_tf.models import config as config_lib
from jmvae_tf.serving import export, signatures
from jmvae_tf.training import run_dir
from pipelines.mnist import mnist_modalities

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = ("jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma")
JOINT_SIGNATURES = {
  "limits",
  "encode",
  "encode_image",
  "encode_label",
  "generate_x_from_w",
  "generate_w_from_x",
  "reconstruct",
  "sample",
  "serving_default",
}
EXPECTED_SIGNATURES = {
  "jmvae": JOINT_SIGNATURES,
  "jmvae_kl": JOINT_SIGNATURES,
  "hierarchical_jmvae": JOINT_SIGNATURES,
  # CVAE's encode_label is its prior N(0, I), which the label does not move.
  "cvae": {
    "limits",
    "encode",
    "encode_label",
    "generate_x_from_w",
    "reconstruct",
    "serving_default",
  },
  "cmma": {
    "limits",
    "encode",
    "encode_label",
    "generate_x_from_w",
    "reconstruct",
    "serving_default",
  },
}
ITERATIVE = {"jmvae", "hierarchical_jmvae"}
BATCH = 3


def request_inputs() -> dict:
  """One value for every input name any signature has."""
  rng = np.random.default_rng(1)
  return {
    "image": (rng.random((BATCH, 28, 28, 1)) < 0.4).astype(np.float32),
    "label": np.eye(10, dtype=np.float32)[[3, 1, 4]],
    "seed": np.array([7, 11], np.int64),
    "num_steps": np.array(3, np.int32),
    "num_samples": np.array(2, np.int32),
  }


def call(module: signatures.ServingModule, signature: str, inputs: dict) -> dict:
  """The signature run in-process on the inputs it takes (by name, as a client sends them)."""
  return module.run(
    signature, {name: tf.constant(inputs[name]) for name in module.input_names(signature)}
  )


def clean_env() -> dict:
  """Only the installed packages' directories on the path, so TensorFlow imports but
  this project does not, even when it is pip-installed (editable or not)."""
  # Nor runners' TF_USE_LEGACY_KERAS (set in this process once a test imports them), which
  # would make TensorFlow reach for tf_keras where it is installed.
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
  paths = sysconfig.get_paths()
  env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return env


def run_outside_project(args, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
  """Runs a Python command from `cwd` (outside the repository) as TF Serving would see it.

  `python -S` skips site.py, so no .pth file runs: an installed copy or an
  editable install of this project stays unreachable while TensorFlow, found
  through PYTHONPATH, still imports.
  """
  assert REPOSITORY_ROOT not in cwd.resolve().parents and cwd.resolve() != REPOSITORY_ROOT
  assert args[0] == sys.executable
  return subprocess.run(
    [args[0], "-S", *args[1:]],
    cwd=cwd,
    env=clean_env(),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  """model name -> (restored model, its config, exported version directory); "model_dirs": their parent."""
  root = tmp_path_factory.mktemp("serving")
  result = {}
  for name in MODELS:
    model_config = train_tiny(root / "models" / name, name)
    model = run_dir.load(str(root / "models" / name))
    path = export.export(
      model,
      str(root / "export"),
      name,
    )
    result[name] = (model, model_config, Path(path))
  result["model_dirs"] = root / "models"
  return result


# The loader: TensorFlow and NumPy only. It refuses to run if the project is importable.
LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import tensorflow as tf

    for package in ("jmvae_tf", "pipelines", "runners"):
      assert importlib.util.find_spec(package) is None, package + " is importable"
    jobs = json.load(open(sys.argv[1]))
    inputs = dict(np.load(jobs["inputs"]))
    report = {}
    for name, path in jobs["exports"].items():
      loaded = tf.saved_model.load(path)
      outputs, entry = {}, {"signatures": sorted(loaded.signatures.keys())}
      for sig_name, fn in loaded.signatures.items():
        args = {k: tf.constant(inputs[k]) for k in fn.structured_input_signature[1]}
        for out_name, value in fn(**args).items():
          outputs[sig_name + "/" + out_name] = value.numpy()
      np.savez(jobs["outputs"] + name + ".npz", **outputs)
      errors = {}
      def attempt(key, call):
        try:
          call()
          errors[key] = None
        except Exception as e:  # recorded for the test to judge
          errors[key] = [type(e).__name__, str(e)[:2000]]
      if "generate_x_from_w" in loaded.signatures:  # the two-modality checks
        gen = loaded.signatures["generate_x_from_w"]
        base = {k: tf.constant(inputs[k]) for k in gen.structured_input_signature[1]}
        attempt("wrong_shape", lambda: gen(**dict(base, label=tf.zeros([2, 9]))))
        attempt("wrong_dtype", lambda: gen(**dict(base, label=tf.zeros([2, 10], tf.int32))))
        attempt("wrong_seed", lambda: gen(**dict(base, seed=tf.constant([1, 2, 3], tf.int64))))
        attempt("method_wrong_shape", lambda: loaded.generate_x_from_w(*[dict(base, label=tf.zeros([2, 9]))[k]
                                           for k in gen.structured_input_signature[1]]))
        enc = loaded.signatures["encode"]
        attempt("batch_mismatch",
                lambda: enc(image=tf.zeros([2, 28, 28, 1]), label=tf.one_hot([0, 1, 2], 10)))
        if "num_steps" in base:
          attempt("negative_steps", lambda: gen(**dict(base, num_steps=tf.constant(-1))))
      entry["errors"] = errors
      report[name] = entry
    json.dump(report, open(jobs["outputs"] + "report.json", "w"))
    print("LOADED", len(report))
    """)


@pytest.fixture(scope="module")
def loaded_outside(exports, tmp_path_factory):
  """(report, {model: outputs}) from loading every export in a process without the project."""
  work = tmp_path_factory.mktemp("outside")
  np.savez(work / "inputs.npz", **request_inputs())
  (work / "loader.py").write_text(LOADER)
  jobs = {
    "inputs": str(work / "inputs.npz"),
    "outputs": str(work / "out_"),
    "exports": {name: str(exports[name][2]) for name in MODELS},
  }
  (work / "jobs.json").write_text(json.dumps(jobs))
  proc = run_outside_project([sys.executable, "loader.py", "jobs.json"], cwd=work)
  assert proc.returncode == 0 and "LOADED 5" in proc.stdout, proc.stderr[-3000:]
  report = json.loads((work / "out_report.json").read_text())
  return report, {name: dict(np.load(work / f"out_{name}.npz")) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_loaded_outside_the_project_matches_the_model(name, exports, loaded_outside):
  model, model_config, _ = exports[name]
  report, outputs = loaded_outside
  assert set(report[name]["signatures"]) == EXPECTED_SIGNATURES[name]
  module = signatures.ServingModule(model, model_config.modalities)
  inputs = request_inputs()
  functions = module.signatures()
  assert set(functions) == EXPECTED_SIGNATURES[name]
  for sig_name in functions:
    expected = call(module, sig_name, inputs)
    loaded_keys = {k.split("/", 1)[1] for k in outputs[name] if k.startswith(sig_name + "/")}
    assert loaded_keys == set(expected), sig_name
    for key, value in expected.items():
      np.testing.assert_allclose(
        outputs[name][f"{sig_name}/{key}"],
        value.numpy(),
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{name} {sig_name}/{key}",
      )
  # serving_default is the generator of digits from labels.
  for key in call(module, "generate_x_from_w", inputs):
    np.testing.assert_array_equal(
      outputs[name][f"serving_default/{key}"], outputs[name][f"generate_x_from_w/{key}"]
    )


@pytest.mark.parametrize("name", MODELS)
def test_wrong_inputs_get_tensorflow_errors(name, loaded_outside):
  errors = loaded_outside[0][name]["errors"]
  for key in ("wrong_shape", "wrong_dtype", "wrong_seed", "method_wrong_shape"):
    assert errors[key] is not None, key
    kind, message = errors[key]
    assert kind in ("TypeError", "ValueError", "InvalidArgumentError"), (key, kind, message)
  assert "int32" in errors["wrong_dtype"][1]
  kind, message = errors["wrong_shape"]
  assert (
    kind == "InvalidArgumentError"
    and "[2,9] is not compatible with expected shape [?,10]" in message
  )
  kind, message = errors["wrong_seed"]
  assert (
    kind == "InvalidArgumentError" and "[3] is not compatible with expected shape [2]" in message
  )
  kind, message = errors["batch_mismatch"]
  assert kind == "InvalidArgumentError" and "same batch size" in message
  if name in ITERATIVE:
    kind, message = errors["negative_steps"]
    assert kind == "InvalidArgumentError" and "num_steps = -1 is out of range" in message


@pytest.mark.parametrize("name", MODELS)
def test_signatures_agree_with_the_public_methods(name, exports):
  """Outputs are what the model's own methods give (independently of the export code)."""
  model, model_config, _ = exports[name]
  module = signatures.ServingModule(model, model_config.modalities)
  inputs = request_inputs()
  batch = {"image": tf.constant(inputs["image"]), "label": tf.constant(inputs["label"])}
  close = dict(rtol=1e-5, atol=1e-5)

  encoded = module.encode(batch["image"], batch["label"])
  mean, variance = model.joint_posterior_layers(batch, training=False)[0]
  np.testing.assert_allclose(encoded["mean"], mean, **close)
  np.testing.assert_allclose(encoded["variance"], variance, **close)
  if name == "hierarchical_jmvae":
    z2_mean, _ = model.joint_posterior_layers(batch, training=False)[1]
    np.testing.assert_allclose(encoded["mean_z2"], z2_mean, **close)
  if name == "jmvae_kl":
    np.testing.assert_allclose(
      module.encode_label(batch["label"])["mean"],
      model.posterior({"label": batch["label"]}, ["label"])[0],
      **close,
    )
  if name in ("cmma", "cvae"):
    np.testing.assert_allclose(
      module.encode_label(batch["label"])["mean"],
      model.prior({"label": batch["label"]})[0],
      **close,
    )
  if name in ITERATIVE:
    # No rounds of iterative sampling: the missing label stays 0.
    zero = module.encode_image(batch["image"], tf.constant([1, 2], tf.int64), tf.constant(0))
    np.testing.assert_allclose(
      zero["mean"],
      model.joint_posterior_layers(
        {"image": batch["image"], "label": tf.zeros([BATCH, 10])}, training=False
      )[0][0],
      **close,
    )

  seed = tf.constant(inputs["seed"])
  generated = call(module, "generate_x_from_w", inputs)
  dist = model.decode(generated["z"], {"label": batch["label"]}, names=["image"])["image"]
  np.testing.assert_allclose(generated["image_probs"], dist.mean(), **close)
  assert set(np.unique(generated["image_sample"])) <= {0.0, 1.0}
  assert generated["image_probs"].shape == (BATCH, 28, 28, 1)

  again = call(module, "generate_x_from_w", inputs)
  other = call(module, "generate_x_from_w", dict(inputs, seed=np.array([8, 11], np.int64)))
  np.testing.assert_array_equal(again["image_sample"], generated["image_sample"])
  assert not np.array_equal(other["image_sample"], generated["image_sample"])

  if "sample" in EXPECTED_SIGNATURES[name]:
    sampled = module.sample(tf.constant(2), seed)
    assert sampled["image_probs"].shape == (2, 28, 28, 1) and sampled["label_probs"].shape == (
      2,
      10,
    )
    np.testing.assert_allclose(
      sampled["label_probs"], model.decoders["label"](sampled["z"]).mean(), **close
    )
    np.testing.assert_allclose(np.sum(sampled["label_sample"], axis=-1), 1.0)
    w_from_x = call(module, "generate_w_from_x", inputs)
    np.testing.assert_allclose(
      w_from_x["label_probs"], model.decoders["label"](w_from_x["z"]).mean(), **close
    )


def test_generation_by_iterative_sampling_follows_the_model_and_the_seed(exports):
  """generate_w_from_x of JMVAE: z from q(z|x, w_K) with w_K imputed by K rounds, exactly
  what model.posterior gives for the same seeds; K = 0 reads w = 0."""
  model, model_config, _ = exports["jmvae"]
  module = signatures.ServingModule(model, model_config.modalities)
  image = tf.constant(request_inputs()["image"])
  seed = tf.constant([5, 6], tf.int64)
  out = module.generate_w_from_x(image, seed, tf.constant(4))
  infer_seed, z_seed, _ = sampling.split_seed(seed, 3)
  mean, variance = model.posterior({"image": image}, ["image"], infer_seed, 4)
  np.testing.assert_allclose(
    out["z"], gaussian.sample(mean, variance, z_seed), rtol=1e-5, atol=1e-5
  )
  np.testing.assert_allclose(np.sum(out["label_sample"], -1), 1.0)
  again = module.generate_w_from_x(image, seed, tf.constant(4))
  np.testing.assert_array_equal(again["label_sample"], out["label_sample"])
  zero = module.encode_image(image, seed, tf.constant(0))
  np.testing.assert_allclose(
    zero["mean"],
    model.joint_posterior_layers({"image": image, "label": tf.zeros([BATCH, 10])}, training=False)[
      0
    ][0],
    rtol=1e-5,
    atol=1e-5,
  )


def test_versions_are_never_overwritten(exports, tmp_path):
  model, model_config, _ = exports["cvae"]
  base = tmp_path / "base"
  first = export.export(model, str(base), "digits")
  second = export.export(model, str(base), "digits")
  assert (Path(first).name, Path(second).name) == ("1", "2")
  stamp = (Path(first) / "saved_model.pb").stat().st_mtime_ns
  with pytest.raises(export.ExportError, match="never overwritten"):
    export.export(model, str(base), "digits", version=1)
  assert (Path(first) / "saved_model.pb").stat().st_mtime_ns == stamp
  assert export.export(model, str(base), "digits", version=7).endswith("7")
  assert export.next_version(str(base / "digits")) == 8
  assert sorted(p.name for p in (base / "digits").iterdir()) == ["1", "2", "7"]  # no staging left
  with pytest.raises(export.ExportError, match="model name"):
    export.export(model, str(base), "../escape")


def test_a_full_disk_is_one_line_and_leaves_no_half_export(exports, tmp_path, monkeypatch):
  """Issue 30: TensorFlow's raw ResourceExhaustedError ... SaveV2 became the documented
  "could not write ...: the disk is full" form; nothing is left in the model's folder."""
  model, _, _ = exports["cvae"]

  def full(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(
      None, None, "{{function_node __wrapped__SaveV2}} variables.data: No space left on device"
    )

  monkeypatch.setattr(tf.saved_model, "save", full)
  with pytest.raises(files.WriteError) as refused:
    export.export(model, str(tmp_path / "base"), "digits")
  message = str(refused.value)
  assert message.startswith(f"could not write {tmp_path / 'base' / 'digits' / '1'} (")
  assert "the disk is full; nothing was exported" in message and "\n" not in message
  assert list((tmp_path / "base" / "digits").iterdir()) == []


def test_export_to_an_in_memory_filesystem_loads_back_and_serves(exports, monkeypatch):
  """Any tf.io.gfile path: an export to TensorFlow's in-memory ram:// filesystem has the
  version directory only (nothing staged is left), its extra files, and serves what the
  local export serves; a failure while saving leaves no version and no staging behind."""
  model, model_config, local = exports["jmvae_kl"]
  base = "ram://exports/test_serving"
  path = export.export(model, base, "digits")
  assert path == f"{base}/digits/1"
  assert tf.io.gfile.listdir(f"{base}/digits") == ["1"]
  assert json.loads(tf.io.gfile.GFile(f"{path}/assets.extra/limits.json").read()) == (
    dataclasses.asdict(options.ServingLimits())
  )
  in_memory = tf.saved_model.load(path).signatures["generate_x_from_w"]
  on_disk = tf.saved_model.load(str(local)).signatures["generate_x_from_w"]
  label = tf.one_hot([3, 7], 10)
  seed = tf.constant([5, 6], tf.int64)
  for key, value in on_disk(label=label, seed=seed).items():
    np.testing.assert_array_equal(in_memory(label=label, seed=seed)[key].numpy(), value.numpy())

  def fails(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "no space left on the store")

  monkeypatch.setattr(tf.saved_model, "save", fails)
  with pytest.raises(files.WriteError, match="no space left on the store"):
    export.export(model, base, "digits")
  assert tf.io.gfile.listdir(f"{base}/digits") == ["1"]  # whole or nothing


def test_saved_model_cli_lists_the_signatures(exports, tmp_path):
  _, _, path = exports["hierarchical_jmvae"]
  proc = run_outside_project(
    [sys.executable, str(BIN / "saved_model_cli"), "show", "--dir", str(path), "--all"],
    cwd=tmp_path,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  for name in EXPECTED_SIGNATURES["hierarchical_jmvae"]:
    assert f"signature_def['{name}']" in proc.stdout
  assert "Method name is: tensorflow/serving/predict" in proc.stdout
  for text in (
    "inputs['num_steps']",
    "inputs['seed']",
    "outputs['image_probs']",
    "outputs['mean_z2']",
  ):
    assert text in proc.stdout


def test_export_runner(exports, tmp_path):
  model_dir = exports["model_dirs"] / "jmvae_kl"
  cmd = [
    sys.executable,
    "-m",
    "runners.export",
    f"--model_dir={model_dir}",
    f"--export_dir={tmp_path / 'base'}",
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(
    cmd + ["--max_num_steps=7", "--max_batch_size=50"],
    cwd=REPOSITORY_ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=240,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  version = tmp_path / "base" / "jmvae_kl" / "1"
  assert (version / "saved_model.pb").exists() and str(version) in proc.stdout
  assert f"read {model_dir}/ckpt/ckpt-1 (epoch 1 of jmvae_kl)" in proc.stdout  # what it exported
  saved = json.loads((version / "assets.extra" / "run.json").read_text())
  assert saved["model"] == "jmvae_kl"
  limits = json.loads((version / "assets.extra" / signatures.LIMITS_FILE).read_text())
  assert limits == {"max_batch_size": 50, "max_num_samples": 1024, "max_num_steps": 7}
  assert "request limits: max_batch_size=50, max_num_samples=1024, max_num_steps=7" in proc.stdout
  zero = subprocess.run(
    cmd + ["--max_num_steps=0"], cwd=REPOSITORY_ROOT, env=env, capture_output=True, text=True
  )
  assert zero.returncode == 2 and "max_num_steps" in zero.stderr.strip().splitlines()[-1]
  bad = subprocess.run(
    cmd[:3] + [f"--model_dir={tmp_path / 'nothing'}"] + cmd[4:],
    cwd=REPOSITORY_ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=240,
  )
  assert bad.returncode == 2 and "run.json" in bad.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("name", ["jmvae_kl"])  # num_steps is exercised by the REST-mode test
def test_client_example_generates_digits_from_labels(name, exports, tmp_path):
  model, model_config, path = exports[name]
  script = REPOSITORY_ROOT / "docs" / "serving_client_example.py"
  proc = run_outside_project(
    [
      sys.executable,
      str(script),
      f"--saved_model={path}",
      "--labels=0,7",
      "--samples_per_label=3",
      "--seed=4,2",
      "--num_steps=2",
      "--output=digits.png",
    ],
    cwd=tmp_path,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "digits.png"))).numpy()[..., 0]
  assert image.shape == (2 * 28, 3 * 28)
  module = signatures.ServingModule(model, model_config.modalities)
  args = dict(
    label=tf.constant(np.eye(10, dtype=np.float32)[[0, 0, 0, 7, 7, 7]]),
    seed=tf.constant([4, 2], tf.int64),
  )
  if name in ITERATIVE:
    args["num_steps"] = tf.constant(2)
  probs = module.run("generate_x_from_w", args)["image_probs"].numpy()
  expected = (np.clip(probs[..., 0], 0, 1) * 255).astype(np.uint8).reshape(2, 3, 28, 28)
  np.testing.assert_array_equal(image, expected.transpose(0, 2, 1, 3).reshape(56, 84))


class FakeTFServing:
  """A stand-in for tensorflow_model_server's REST API (which cannot be installed here):
  GET /v1/models/NAME/metadata and POST /v1/models/NAME:predict in the columnar form,
  answered by the loaded SavedModel. It checks the client's requests, not TF Serving."""

  def __init__(self, model_name: str, saved_model: Path):
    import http.server  # pylint: disable=g-import-not-at-top
    import threading  # pylint: disable=g-import-not-at-top

    loaded = tf.saved_model.load(str(saved_model))
    self.requests = []
    outer = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def log_message(self, *args):
        pass

      def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_GET(self):
        if self.path != f"/v1/models/{model_name}/metadata":
          return self.reply(404, {"error": self.path})
        signatures = {
          name: {
            "inputs": {k: {"name": k} for k in fn.structured_input_signature[1]},
            "method_name": "tensorflow/serving/predict",
          }
          for name, fn in loaded.signatures.items()
        }
        return self.reply(
          200,
          {
            "model_spec": {"name": model_name, "version": "1"},
            "metadata": {"signature_def": {"signature_def": signatures}},
          },
        )

      def do_POST(self):
        if self.path != f"/v1/models/{model_name}:predict":
          return self.reply(404, {"error": self.path})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outer.requests.append(body)
        fn = loaded.signatures[body.get("signature_name", "serving_default")]
        specs = fn.structured_input_signature[1]
        try:
          args = {k: tf.constant(v, specs[k].dtype) for k, v in body["inputs"].items()}
          outputs = fn(**args)
        except (TypeError, ValueError, tf.errors.OpError) as e:
          return self.reply(400, {"error": str(e)})
        return self.reply(200, {"outputs": {k: v.numpy().tolist() for k, v in outputs.items()}})

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
    self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

  def __enter__(self):
    self.thread.start()
    return self

  def __exit__(self, *exc):
    self.server.shutdown()
    self.server.server_close()


def test_client_example_rest_mode_against_a_stand_in_server(exports, tmp_path):
  model, model_config, path = exports["hierarchical_jmvae"]
  script = REPOSITORY_ROOT / "docs" / "serving_client_example.py"
  with FakeTFServing("digits", path) as server:
    proc = run_outside_project(
      [
        sys.executable,
        str(script),
        f"--server={server.url}",
        "--model_name=digits",
        "--labels=5",
        "--samples_per_label=2",
        "--seed=1,9",
        "--num_steps=3",
        "--output=rest.png",
      ],
      cwd=tmp_path,
    )
  assert proc.returncode == 0, proc.stderr[-3000:]
  (request,) = server.requests
  assert request["signature_name"] == "generate_x_from_w" and request["inputs"]["num_steps"] == 3
  assert request["inputs"]["seed"] == [1, 9] and len(request["inputs"]["label"]) == 2
  module = signatures.ServingModule(model, model_config.modalities)
  probs = module.run(
    "generate_x_from_w",
    dict(
      label=tf.constant(np.eye(10, dtype=np.float32)[[5, 5]]),
      seed=tf.constant([1, 9], tf.int64),
      num_steps=tf.constant(3),
    ),
  )
  image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "rest.png"))).numpy()[..., 0]
  expected = (np.clip(probs["image_probs"].numpy()[..., 0], 0, 1) * 255).astype(np.uint8)
  np.testing.assert_array_equal(image, np.concatenate(list(expected), axis=1))
  # Over the export's limit: the server's error text reaches the client, one line.
  with FakeTFServing("digits", path) as server:
    refused = run_outside_project(
      [
        sys.executable,
        str(script),
        f"--server={server.url}",
        "--model_name=digits",
        "--labels=5",
        "--num_steps=1001",
      ],
      cwd=tmp_path,
    )
  assert refused.returncode == 1, refused.stderr[-3000:]
  assert refused.stderr.strip().splitlines()[-1] == (
    "error: the model refused the request: HTTP 400: num_steps = 1001 is out of range: "
    "it must be in [0, 1000] (the limit of this export)"
  )


# --- limits and input checks, through the loaded SavedModel --------------------------------

SMALL_LIMITS = options.ServingLimits(max_batch_size=4, max_num_samples=3, max_num_steps=5)


@pytest.fixture(scope="module")
def small_limits(exports, tmp_path_factory):
  """JMVAE (iterative sampling, a `sample` signature) exported with small limits and loaded
  back with tf.saved_model.load: (the loaded object, the export directory)."""
  model, model_config, _ = exports["jmvae"]
  path = export.export(
    model,
    str(tmp_path_factory.mktemp("limits")),
    "jmvae",
    limits=SMALL_LIMITS,
  )
  return tf.saved_model.load(path), Path(path)


def refusal(fn, **inputs) -> str:
  """The InvalidArgumentError text of calling `fn` (a loaded signature) on `inputs`."""
  with pytest.raises(tf.errors.InvalidArgumentError) as caught:
    fn(**{k: tf.constant(v) for k, v in inputs.items()})
  return caught.value.message


def test_limits_are_recorded_in_the_export(exports, small_limits):
  loaded, path = small_limits
  expected = {"max_batch_size": 4, "max_num_samples": 3, "max_num_steps": 5}
  assert {k: int(v) for k, v in loaded.signatures["limits"]().items()} == expected
  assert json.loads((path / "assets.extra" / signatures.LIMITS_FILE).read_text()) == expected
  assert "limits: the most one request may ask: max_batch_size=4" in (
    (path / "assets.extra" / "signatures.txt").read_text()
  )
  # The default export carries the defaults, which are the export runner's flag defaults.
  from absl import flags

  from runners import export as export_runner

  default = json.loads((exports["cvae"][2] / "assets.extra" / signatures.LIMITS_FILE).read_text())
  fv = flags.FlagValues()
  export_runner.define_flags(fv)
  assert default == dataclasses.asdict(options.ServingLimits())
  assert default == {name: fv[name].default for name in default}
  with pytest.raises(ValueError, match="max_num_steps must be a positive integer"):
    options.ServingLimits(max_num_steps=0)


def test_requests_at_the_limits_are_served_and_unchanged(exports, small_limits):
  """At each limit the export answers, with the outputs of the default-limit export."""
  loaded, _ = small_limits
  default = tf.saved_model.load(str(exports["jmvae"][2]))
  rng = np.random.default_rng(3)
  grey = rng.random((4, 28, 28, 1)).astype(np.float32)  # [0, 1] pixels, batch = the limit
  grey[0, 0, 0, 0], grey[0, 0, 1, 0] = 0.0, 1.0
  calls = [
    ("generate_w_from_x", dict(image=grey, seed=np.array([1, 2]), num_steps=np.int32(5))),
    ("generate_x_from_w", dict(label=np.eye(10, dtype=np.float32)[[0, 9, 9, 3]], seed=[3, 4])),
    ("sample", dict(num_samples=np.int32(3), seed=[5, 6])),
    ("sample", dict(num_samples=np.int32(0), seed=[5, 6])),
  ]
  for name, inputs in calls:
    typed = {
      k: tf.constant(v, tf.int64) if k == "seed" else tf.constant(v) for k, v in inputs.items()
    }
    if name == "generate_x_from_w":
      typed["num_steps"] = tf.constant(5)
    got = loaded.signatures[name](**typed)
    want = default.signatures[name](**typed)
    assert set(got) == set(want)
    for key in got:
      np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=f"{name}/{key}")
  assert loaded.signatures["sample"](
    num_samples=tf.constant(3), seed=tf.constant([5, 6], tf.int64)
  )["image_probs"].shape == (3, 28, 28, 1)


@pytest.mark.parametrize(
  "signature, inputs, message",
  [
    ("generate_w_from_x", dict(num_steps=6), "num_steps = 6 is out of range: it must be in [0, 5]"),
    ("generate_w_from_x", dict(num_steps=2**31 - 1), "num_steps = 2147483647 is out of range"),
    ("generate_w_from_x", dict(num_steps=-1), "num_steps = -1 is out of range"),
    ("encode_label", dict(num_steps=6), "num_steps = 6 is out of range"),
    ("sample", dict(num_samples=4), "num_samples = 4 is out of range: it must be in [0, 3]"),
    ("sample", dict(num_samples=-1), "num_samples = -1 is out of range"),
    ("generate_w_from_x", dict(batch=5), "image: batch size 5 is over the limit of this export, 4"),
    ("generate_x_from_w", dict(batch=5), "label: batch size 5 is over the limit of this export, 4"),
    ("reconstruct", dict(batch=5), "batch size 5 is over the limit of this export, 4"),
    ("encode", dict(batch=5), "batch size 5 is over the limit of this export, 4"),
  ],
)
def test_requests_over_a_limit_are_refused(small_limits, signature, inputs, message):
  loaded, _ = small_limits
  fn = loaded.signatures[signature]
  batch = inputs.pop("batch", 2)
  base = {
    "image": np.zeros((batch, 28, 28, 1), np.float32),
    "label": np.eye(10, dtype=np.float32)[np.arange(batch) % 10],
    "seed": np.array([1, 2], np.int64),
    "num_steps": np.int32(1),
    "num_samples": np.int32(1),
  }
  base.update({k: np.int32(v) for k, v in inputs.items()})
  args = {k: base[k] for k in fn.structured_input_signature[1]}
  assert message in refusal(fn, **args)


def _with(array: np.ndarray, index, value) -> np.ndarray:
  array = array.copy()
  array[index] = value
  return array


IMAGE = np.zeros((2, 28, 28, 1), np.float32)
LABEL = np.eye(10, dtype=np.float32)[[1, 2]]


@pytest.mark.parametrize(
  "image, label, message",
  [
    (_with(IMAGE, (1, 3, 4, 0), np.nan), LABEL, "image: values must be finite (no NaN or inf)"),
    (_with(IMAGE, (0, 0, 0, 0), np.inf), LABEL, "image: values must be finite"),
    (
      _with(IMAGE, (0, 5, 5, 0), 255.0),
      LABEL,
      "image: values must be in [0, 1]; got min 0 and max 255",
    ),
    (
      _with(IMAGE, (0, 5, 5, 0), -5.0),
      LABEL,
      "image: values must be in [0, 1]; got min -5 and max 0",
    ),
    (IMAGE, _with(LABEL, (0, 1), np.nan), "label: values must be finite"),
    (IMAGE, _with(LABEL, (0, slice(1, 3)), 0.5), "label: each example must be one-hot"),
    (IMAGE, _with(LABEL, (1, 7), 1.0), "label: each example must be one-hot"),
    (IMAGE, _with(LABEL, 1, 0.0), "label: each example must be one-hot"),
    (IMAGE, _with(LABEL, (0, 1), 3.0), "label: each example must be one-hot"),
  ],
)
def test_bad_inputs_are_refused_with_what_is_wrong(small_limits, image, label, message):
  """NaN/inf, pixels outside [0, 1] and labels that are not one-hot: refused by every
  signature that takes them (here encode, reconstruct and the one-modality ones)."""
  loaded, _ = small_limits
  seed = np.array([1, 2], np.int64)
  assert message in refusal(loaded.signatures["encode"], image=image, label=label)
  assert message in refusal(loaded.signatures["reconstruct"], image=image, label=label, seed=seed)
  name, value = ("image", image) if message.startswith("image") else ("label", label)
  other = "generate_w_from_x" if name == "image" else "generate_x_from_w"
  one = loaded.signatures[other]
  assert message in refusal(one, **{name: value, "seed": seed, "num_steps": np.int32(1)})


def test_signed_ranges_come_from_the_modalities(tmp_path):
  """Tanh-mean Gaussian modalities (CelebA's pixels and attributes, here small) take values
  in [-1, 1], from their likelihood: the same model code, other bounds."""
  from jmvae_tf.core.likelihoods import GAUSSIAN_FIXED
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.models import config as config_lib

  modalities = (
    Modality("image", GAUSSIAN_FIXED, (4, 4, 3), "image"),
    Modality("attributes", GAUSSIAN_FIXED, (5,), "vector"),
  )
  model_config = config_lib.ModelConfig.make(
    "jmvae_kl", modalities, "mnist_mlp", "faces", latent_dim=2
  )
  model = config_lib.build_model(model_config)
  loaded = tf.saved_model.load(export.export(model, str(tmp_path), "faces"))
  encode = loaded.signatures["encode"]
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (3, 4, 4, 3)).astype(np.float32)
  image[0, 0, 0, 0], image[0, 0, 0, 1] = -1.0, 1.0
  attributes = rng.choice([-1.0, 1.0], (3, 5)).astype(np.float32)
  got = encode(image=tf.constant(image), attributes=tf.constant(attributes))
  mean, _ = model.joint_posterior_layers(
    {"image": image, "attributes": attributes}, training=False
  )[0]
  np.testing.assert_allclose(got["mean"], mean, rtol=1e-5, atol=1e-6)
  assert "image: values must be in [-1, 1]; got min" in refusal(
    encode, image=_with(image, (2, 1, 1, 2), 1.5), attributes=attributes
  )
  assert "attributes: values must be in [-1, 1]; got min -2" in refusal(
    encode, image=image, attributes=_with(attributes, (1, 4), -2.0)
  )
  assert "attributes: values must be finite" in refusal(
    encode, image=image, attributes=_with(attributes, (1, 4), np.nan)
  )
  assert [m.likelihood.value_range for m in modalities] == [(-1.0, 1.0)] * 2


def test_client_example_without_a_server_or_a_model_is_one_line(tmp_path):
  """--print_request needs no model; a --server where none listens is one line, exit 1."""
  script = REPOSITORY_ROOT / "docs" / "serving_client_example.py"
  printed = run_outside_project(
    [sys.executable, str(script), "--print_request", "--labels=3", "--samples_per_label=1"],
    cwd=tmp_path,
  )
  assert printed.returncode == 0, printed.stderr[-2000:]
  body = json.loads(printed.stdout)
  assert body["inputs"]["label"] == [[0.0, 0.0, 0.0, 1.0] + [0.0] * 6]
  with socket.socket() as s:  # bound but not listening: refused, and no one else can take it
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    unreachable = run_outside_project(
      [sys.executable, str(script), f"--server=http://127.0.0.1:{port}", "--model_name=digits"],
      cwd=tmp_path,
    )
  assert unreachable.returncode == 1
  lines = unreachable.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: cannot reach http://127.0.0.1:"), lines


# --- three modalities (issue 20) -------------------------------------------------------------

K3_SIGNATURES = [
  "encode",
  "encode_a",
  "generate_b_from_a",
  "generate_label_from_a",
  "encode_b",
  "generate_a_from_b",
  "generate_label_from_b",
  "encode_label",
  "generate_a_from_label",
  "generate_b_from_label",
  "encode_a_and_b",
  "generate_label_from_a_and_b",
  "encode_a_and_label",
  "generate_b_from_a_and_label",
  "encode_b_and_label",
  "generate_a_from_b_and_label",
  "reconstruct",
  "sample",
  "limits",
]


def k3_inputs() -> dict:
  rng = np.random.default_rng(2)
  return {
    "a": (rng.random((BATCH, 6)) < 0.5).astype(np.float32),
    "b": (rng.random((BATCH, 4)) < 0.5).astype(np.float32),
    "label": np.eye(3, dtype=np.float32)[[2, 0, 1]],
    "seed": np.array([3, 9], np.int64),
    "num_steps": np.array(2, np.int32),
    "num_samples": np.array(2, np.int32),
  }


@pytest.fixture(scope="module")
def k3_exports(tmp_path_factory):
  """A JMVAE-kl and a JMVAE on three small modalities, exported: (model, module, path)."""
  from jmvae_tf.core.modalities import Modality

  modalities = (
    Modality("a", "bernoulli", (6,), "vector"),
    Modality("b", "bernoulli", (4,), "vector"),
    Modality("label", "categorical", (3,)),
  )
  root = tmp_path_factory.mktemp("k3_serving")
  out = {}
  for name in ("jmvae_kl", "jmvae"):
    model_config = config_lib.ModelConfig.make(name, modalities, "mnist_mlp", "toy", latent_dim=2)
    model = config_lib.build_model(model_config)
    path = export.export(model, str(root), name)
    out[name] = (model, signatures.ServingModule(model, modalities), Path(path))
  return out


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae"])
def test_three_modalities_export_every_subset_in_a_documented_order(name, k3_exports):
  """encode_<subset> for each of the six proper subsets and generate_<target>_from_<subset>
  for each missing modality (12), in the order of the docs: singles, then pairs, each in the
  modalities' order; serving_default generates the first modality from the other two."""
  model, module, path = k3_exports[name]
  assert module.function_names == K3_SIGNATURES
  assert module.default_signature == "generate_a_from_b_and_label"
  listed = (path / "assets.extra" / "signatures.txt").read_text().splitlines()
  assert [line.split(":")[0] for line in listed[1:]] == K3_SIGNATURES
  assert module.input_names("generate_label_from_a_and_b") == ["a", "b", "seed"] + (
    ["num_steps"] if name == "jmvae" else []
  )


@pytest.mark.parametrize("name", ["jmvae_kl", "jmvae"])
def test_every_subset_generates_what_the_model_does(name, k3_exports):
  """Each generate_ signature gives z from its subset as model.posterior does (iterative
  sampling for JMVAE, with the request's num_steps), then the target's parameters."""
  from jmvae_tf.core import gaussian
  from jmvae_tf.core.sampling import split_seed

  model, module, _ = k3_exports[name]
  inputs = k3_inputs()
  for signature in module.function_names:
    if not signature.startswith("generate_"):
      continue
    target, subset = signature[len("generate_") :].split("_from_")
    given = subset.split("_and_")
    got = call(module, signature, inputs)
    infer_seed, z_seed, _ = split_seed(tf.constant(inputs["seed"]), 3)
    steps = int(inputs["num_steps"]) if model.uses_iterative_sampling(given) else 0
    batch = {g: tf.constant(inputs[g]) for g in given}
    mean, variance = model.posterior(batch, given, infer_seed, steps)
    z = gaussian.sample(mean, variance, z_seed)
    np.testing.assert_allclose(got["z"].numpy(), z.numpy(), rtol=1e-5, atol=1e-6)
    probs = model.decode(z, batch, names=[target])[target].mean().numpy()
    np.testing.assert_allclose(got[f"{target}_probs"].numpy(), probs, rtol=1e-5, atol=1e-6)


def test_names_and_inputs_follow_the_data_sets_order_not_the_alphabet():
  """Modalities c, a, label (not alphabetical): subsets in the data set's order, each
  signature's inputs in the order of its name."""
  from jmvae_tf.core.modalities import Modality

  modalities = (
    Modality("c", "bernoulli", (6,), "vector"),
    Modality("a", "bernoulli", (4,), "vector"),
    Modality("label", "categorical", (3,)),
  )
  model_config = config_lib.ModelConfig.make(
    "jmvae_kl", modalities, "mnist_mlp", "toy", latent_dim=2
  )
  module = signatures.ServingModule(config_lib.build_model(model_config), modalities)
  encoders = [n for n in module.function_names if n.startswith("encode")]
  assert encoders == [
    "encode",
    "encode_c",
    "encode_a",
    "encode_label",
    "encode_c_and_a",
    "encode_c_and_label",
    "encode_a_and_label",
  ]
  assert module.input_names("encode") == ["c", "a", "label"]
  assert module.input_names("encode_c_and_a") == ["c", "a"]
  assert module.input_names("generate_label_from_c_and_a") == ["c", "a", "seed"]
  assert module.default_signature == "generate_c_from_a_and_label"


def test_a_one_way_model_of_the_label_takes_image_then_label():
  """A CVAE of the label given the image orders its own modalities target first; its
  signatures keep the data set's (x, w) order, as before three modalities."""
  model_config = config_lib.ModelConfig.make(
    "cvae",
    mnist_modalities(),
    "mnist_mlp",
    "mnist",
    latent_dim=2,
    target="label",
    condition="image",
  )
  module = signatures.ServingModule(config_lib.build_model(model_config), mnist_modalities())
  assert module.input_names("encode") == ["image", "label"]
  assert module.input_names("reconstruct") == ["image", "label", "seed"]
  assert module.default_signature == "generate_w_from_x"


def test_three_modality_requests_keep_the_checks_and_limits(k3_exports):
  """Inputs of different batch sizes, a label that is not one-hot, too many steps: refused
  in the graph, naming what is wrong."""
  _, module, _ = k3_exports["jmvae"]
  inputs = k3_inputs()
  bad = {
    "a": inputs["a"][:2],
    "b": inputs["b"],
    "seed": inputs["seed"],
    "num_steps": inputs["num_steps"],
  }
  with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
    call(module, "generate_label_from_a_and_b", bad)
  not_one_hot = dict(inputs, label=inputs["label"] * 0.5)
  with pytest.raises(tf.errors.InvalidArgumentError, match="label: each example must be one-hot"):
    call(module, "generate_a_from_label", not_one_hot)
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps = 5000 is out of range"):
    call(module, "generate_a_from_label", dict(inputs, num_steps=np.array(5000, np.int32)))


def test_a_three_modality_export_serves_without_the_project(k3_exports, tmp_path):
  """Loaded by TensorFlow alone (the loader refuses to run if the project is importable),
  every signature answers as in-process."""
  work = tmp_path / "outside"
  work.mkdir()
  np.savez(work / "inputs.npz", **k3_inputs())
  (work / "loader.py").write_text(LOADER)
  jobs = {
    "inputs": str(work / "inputs.npz"),
    "outputs": str(work / "out_"),
    "exports": {name: str(path) for name, (_, _, path) in k3_exports.items()},
  }
  (work / "jobs.json").write_text(json.dumps(jobs))
  proc = run_outside_project([sys.executable, "loader.py", "jobs.json"], cwd=work)
  assert proc.returncode == 0 and "LOADED 2" in proc.stdout, proc.stderr[-3000:]
  for name, (_, module, _) in k3_exports.items():
    outputs = dict(np.load(work / f"out_{name}.npz"))
    for signature in module.function_names:
      for key, value in call(module, signature, k3_inputs()).items():
        np.testing.assert_allclose(
          outputs[f"{signature}/{key}"], value.numpy(), rtol=1e-5, atol=1e-6
        )


# --- text: a caption is a string in and a string out ---------------------------------------------

CAPTION_WORDS = ("zero", "one", "two")


def caption_of(k: int) -> str:
  return f"the digit {CAPTION_WORDS[k]}"


def parse_caption(text) -> int:
  """The class a caption states, -1 for none (the toy grammar's parser)."""
  text = text.decode() if isinstance(text, bytes) else text
  return next((k for k in range(3) if text == caption_of(k)), -1)


@pytest.fixture(scope="module")
def caption_export(tmp_path_factory):
  """JMVAE-kl trained on (caption, label) pairs where the caption says the label ("the digit
  one"), exported: (the model, its modalities, the export directory)."""
  import jmvae_tf
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.core.text import Vocabulary

  rng = np.random.default_rng(0)
  classes = rng.integers(0, 3, 96)
  texts = [caption_of(k) for k in classes]
  vocabulary = Vocabulary.build(texts, 4)  # 3 words and <eos>
  modalities = (
    Modality("caption", "tokens", vocabulary.shape, vocabulary=vocabulary.tokens),
    Modality("label", "categorical", (3,)),
  )
  data = jmvae_tf.ArrayDataSet(
    modalities,
    {
      "caption": vocabulary.encoder()(tf.constant(texts)).numpy(),
      "label": np.eye(3, dtype=np.float32)[classes],
    },
    architecture="generic",
  )
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "32"}, latent_dim=2)
  jmvae_tf.train(
    model,
    data,
    epochs=60,
    batch_size=32,
    warmup_epochs=0,
    learning_rate=3e-3,
    steps_per_execution=3,  # an epoch a call: the same steps, less overhead
    verbose=0,
  )
  path = export.export(model, str(tmp_path_factory.mktemp("caption_export")), "captions")
  return model, modalities, Path(path)


# TensorFlow alone: the captions are read by the vocabulary the SavedModel holds.
CAPTION_LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import tensorflow as tf

    for package in ("jmvae_tf", "pipelines", "runners"):
      assert importlib.util.find_spec(package) is None, package + " is importable"
    loaded = tf.saved_model.load(sys.argv[1])
    seed = tf.constant([3, 5], tf.int64)
    report = {"signatures": sorted(loaded.signatures.keys()), "specs": {}, "errors": {}}
    for name, fn in loaded.signatures.items():
      report["specs"][name] = {
        k: [s.dtype.name, s.shape.as_list()] for k, s in fn.structured_input_signature[1].items()
      }
    gen_x = loaded.signatures["generate_x_from_w"]
    gen_w = loaded.signatures["generate_w_from_x"]
    classes = np.repeat(np.arange(3), 10)
    out = gen_x(label=tf.constant(np.eye(3, dtype=np.float32)[classes]), seed=seed)
    report["text"] = [t.decode() for t in out["caption_text"].numpy()]
    report["sample_text"] = [t.decode() for t in out["caption_sample_text"].numpy()]
    report["caption_probs_shape"] = list(out["caption_probs"].shape)
    words = ["zero", "One", "TWO!"]
    captions = ["The digit " + words[k] for k in classes] + ["the digit seven two"]
    report["label_probs"] = gen_w(caption=tf.constant(captions), seed=seed)["label_probs"].numpy().tolist()
    single = lambda c: gen_w(caption=tf.constant([c]), seed=seed)["label_probs"].numpy()[0].tolist()
    report["short"] = single("the digit two")
    report["long"] = single("the digit two two two two one zero")
    for key, bad in {
      "empty": ["the digit one", "", "the digit two"],
      "punctuation": ["?!", "the digit one"],
      "unknown": ["the digit one", "the digit two", "Zebra yak", "the digit zero"],
    }.items():
      try:
        gen_w(caption=tf.constant(bad), seed=seed)
        report["errors"][key] = None
      except Exception as e:
        report["errors"][key] = [type(e).__name__, str(e)[:2000]]
    report["tf_keras"] = "tf_keras" in sys.modules
    json.dump(report, open("report.json", "w"))
    print("LOADED")
    """)


@pytest.fixture(scope="module")
def caption_loaded(caption_export, tmp_path_factory):
  """What the caption export answered in a process without the project (nor tf_keras)."""
  work = tmp_path_factory.mktemp("caption_outside")
  (work / "loader.py").write_text(CAPTION_LOADER)
  proc = run_outside_project(
    [sys.executable, "loader.py", str(caption_export[2])], cwd=work, timeout=240
  )
  assert proc.returncode == 0 and "LOADED" in proc.stdout, proc.stderr[-3000:]
  return json.loads((work / "report.json").read_text())


def test_a_caption_export_serves_strings_with_tensorflow_alone(caption_export, caption_loaded):
  model, modalities, _ = caption_export
  report = caption_loaded
  assert report["tf_keras"] is False  # the vocabulary's lookup is TensorFlow's own
  assert report["specs"]["generate_w_from_x"]["caption"] == ["string", [None]]
  assert report["specs"]["generate_x_from_w"]["label"] == ["float32", [None, 3]]
  assert report["specs"]["reconstruct"]["caption"] == ["string", [None]]
  assert signatures.modality_spec(modalities[0]) == tf.TensorSpec([None], tf.string, "caption")
  vocabulary = modalities[0].text
  assert report["caption_probs_shape"] == [30, *vocabulary.shape]
  for texts in (report["text"], report["sample_text"]):
    assert len(texts) == 30
    for text in texts:
      assert set(text.split()) <= set(vocabulary.tokens) - {"<eos>"}, text
  # the same answers as the model in this process, given the same strings and seed
  module = signatures.ServingModule(model, modalities)
  classes = np.repeat(np.arange(3), 10)
  words = ["zero", "One", "TWO!"]
  captions = ["The digit " + words[k] for k in classes] + ["the digit seven two"]
  seed = tf.constant([3, 5], tf.int64)
  here = module.run("generate_w_from_x", {"caption": tf.constant(captions), "seed": seed})
  np.testing.assert_allclose(
    report["label_probs"], here["label_probs"].numpy(), rtol=1e-5, atol=1e-6
  )
  labels = tf.constant(np.eye(3, dtype=np.float32)[classes])
  here = module.run("generate_x_from_w", {"label": labels, "seed": seed})
  assert [t.decode() for t in here["caption_text"].numpy()] == report["text"]
  assert [t.decode() for t in here["caption_sample_text"].numpy()] == report["sample_text"]


def test_a_trained_caption_model_reads_and_writes_its_captions(caption_loaded):
  """Each way, one draw of z per example: mostly right (chance is 1/3), and every generated
  caption one of the three the model was trained on."""
  report = caption_loaded
  classes = np.repeat(np.arange(3), 10)
  # label k -> "the digit <k>", parsed back to k
  parsed = np.array([parse_caption(t) for t in report["text"]])
  assert np.all(parsed >= 0), report["text"]
  assert np.mean(parsed == classes) >= 0.7, report["text"]
  for k in range(3):  # each label's own caption the most frequent
    assert np.bincount(parsed[classes == k], minlength=3).argmax() == k
  # caption -> label: the class it says (case and punctuation as the vocabulary reads them)
  probs = np.array(report["label_probs"])
  assert np.mean(probs[:30].argmax(-1) == classes) >= 0.7
  for k in range(3):
    assert probs[:30][classes == k].mean(0).argmax() == k
  # a word the vocabulary does not have reads as [UNK]; the rest of the caption still serves
  assert np.isclose(probs[30].sum(), 1.0, atol=1e-5)


def test_a_caption_over_t_minus_1_words_is_cut_as_in_training(caption_loaded):
  """T = 4: "the digit two two two two one zero" reads as "the digit two"."""
  np.testing.assert_allclose(caption_loaded["long"], caption_loaded["short"], rtol=1e-6)


@pytest.mark.parametrize(
  "key, message",
  [
    ("empty", "caption: caption 1 is empty (no word once punctuation goes)"),
    ("punctuation", "caption: caption 0 is empty (no word once punctuation goes)"),
    ("unknown", "caption: caption 2 ("),
  ],
)
def test_an_empty_or_unknown_caption_is_refused_naming_its_index(caption_loaded, key, message):
  kind, text = caption_loaded["errors"][key]
  assert kind == "InvalidArgumentError" and message in text, text
  if key == "unknown":
    assert "Zebra yak" in text and "has only words the vocabulary does not have" in text


def test_caption_requests_keep_the_limits_and_the_batch_checks(caption_export):
  model, modalities, _ = caption_export
  module = signatures.ServingModule(model, modalities, SMALL_LIMITS)
  seed = tf.constant([1, 2], tf.int64)
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r"caption: batch size 5 is over the limit of this export, 4 \(max_batch_size\)",
  ):
    module.run("generate_w_from_x", {"caption": tf.constant(["the digit one"] * 5), "seed": seed})
  with pytest.raises(tf.errors.InvalidArgumentError, match="every input must have the same batch"):
    module.run(
      "reconstruct",
      {"caption": tf.constant(["the digit one"] * 2), "label": tf.eye(3)[:1], "seed": seed},
    )
  # "[UNK]" is how a decoded caption writes an unknown word; read back, it is no word it knows
  with pytest.raises(tf.errors.InvalidArgumentError, match="caption 1 .* has only words"):
    module.run("generate_w_from_x", {"caption": tf.constant(["two", "[UNK]"]), "seed": seed})
  served = module.run(
    "generate_w_from_x", {"caption": tf.constant(["the digit [UNK]"] * 4), "seed": seed}
  )
  assert served["label_probs"].shape == (4, 3)


def test_an_empty_batch_of_captions_is_refused_in_one_line(caption_export):
  """TensorFlow's 1-D convolutions (the caption's networks) fail on an empty batch with a
  kernel's message; the export says what is wrong instead."""
  model, modalities, _ = caption_export
  module = signatures.ServingModule(model, modalities)
  seed = tf.constant([1, 2], tf.int64)
  with pytest.raises(tf.errors.InvalidArgumentError, match="caption: the request holds no caption"):
    module.run("generate_w_from_x", {"caption": tf.constant([], tf.string), "seed": seed})

r"""Generates digits from labels with an exported model, needing only TensorFlow and NumPy.

It does not import jmvae_tf: it reads the SavedModel that `runners.export` wrote,
either from disk or through a running TF Serving's REST API.

  # From the SavedModel directory (tf.saved_model.load):
  python docs/serving_client_example.py --saved_model=/tmp/serving/jmvae_kl/1 --output=digits.png

  # From TF Serving (tensorflow_model_server --rest_api_port=8501 --model_name=jmvae_kl
  #                  --model_base_path=/tmp/serving/jmvae_kl):
  python docs/serving_client_example.py --server=http://localhost:8501 --model_name=jmvae_kl

Writes a PNG with one row per label: the Bernoulli probabilities p(x|z) of
`--samples_per_label` digits (z drawn with `--seed`). JMVAE and hierarchical JMVAE
take `--num_steps` iterative-sampling rounds; the script sends it only when the
signature has that input. A request the export refuses (over its limits, e.g. more
than its max_num_steps, or a bad input) ends with the refusal's one line and status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request

import numpy as np

SIGNATURE = "generate_x_from_w"
NUM_CLASSES = 10


class Refused(Exception):
  """The model (or the server) refused the request: the message says why."""


def refusal(text: str) -> str:
  """The line that says why: the export's input checks fail with "assertion failed: [why]"
  inside TensorFlow's longer error text (which TF Serving returns in "error")."""
  match = re.search(r"assertion failed: \[(.*?)\]\n", text + "\n")
  if match:
    return match.group(1).replace("\\'", "'")
  return (text.strip().splitlines() or ["(no message)"])[-1]


def one_hot_labels(labels, samples_per_label: int) -> np.ndarray:
  classes = np.repeat(np.asarray(labels, np.int64), samples_per_label)
  return np.eye(NUM_CLASSES, dtype=np.float32)[classes]


def request_body(label: np.ndarray, seed, num_steps, with_num_steps: bool) -> dict:
  """The TF Serving REST `predict` request, columnar ("inputs") form: the inputs have
  different leading dimensions (label [B, 10], seed [2], num_steps scalar)."""
  inputs = {"label": label.tolist(), "seed": [int(s) for s in seed]}
  if with_num_steps:
    inputs["num_steps"] = int(num_steps)
  return {"signature_name": SIGNATURE, "inputs": inputs}


def generate_local(saved_model: str, label: np.ndarray, seed, num_steps) -> np.ndarray:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  loaded = tf.saved_model.load(saved_model)
  generate = loaded.signatures[SIGNATURE]
  inputs = {"label": tf.constant(label), "seed": tf.constant(seed, tf.int64)}
  if "num_steps" in generate.structured_input_signature[1]:
    inputs["num_steps"] = tf.constant(num_steps, tf.int32)
  try:
    return generate(**inputs)["image_probs"].numpy()
  except tf.errors.InvalidArgumentError as e:
    raise Refused(refusal(e.message)) from None


def generate_rest(server: str, model_name: str, label: np.ndarray, seed, num_steps) -> np.ndarray:
  base = f"{server.rstrip('/')}/v1/models/{model_name}"
  with urllib.request.urlopen(f"{base}/metadata") as response:
    metadata = json.load(response)
  inputs = metadata["metadata"]["signature_def"]["signature_def"][SIGNATURE]["inputs"]
  body = json.dumps(request_body(label, seed, num_steps, "num_steps" in inputs)).encode()
  request = urllib.request.Request(
    f"{base}:predict", data=body, headers={"Content-Type": "application/json"}
  )
  try:
    with urllib.request.urlopen(request) as response:
      outputs = json.load(response)["outputs"]
  except urllib.error.HTTPError as e:  # TF Serving: 400 and {"error": "..."}
    body = e.read().decode("utf-8", "replace")
    try:
      body = json.loads(body).get("error", body)
    except ValueError:
      pass
    raise Refused(f"HTTP {e.code}: {refusal(body)}") from None
  return np.asarray(outputs["image_probs"], np.float32)


def grid(probs: np.ndarray, rows: int) -> np.ndarray:
  """[B, 28, 28, 1] probabilities -> uint8 image, `rows` rows of B / rows digits."""
  b, h, w, _ = probs.shape
  cols = b // rows
  tiles = (np.clip(probs[..., 0], 0, 1) * 255).astype(np.uint8).reshape(rows, cols, h, w)
  return tiles.transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def write_png(path: str, image: np.ndarray):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.io.write_file(path, tf.io.encode_png(image[..., np.newaxis]))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  where = parser.add_mutually_exclusive_group()  # neither is needed for --print_request
  where.add_argument("--saved_model", help="An exported version directory, e.g. BASE/NAME/1.")
  where.add_argument("--server", help="TF Serving's REST address, e.g. http://localhost:8501.")
  parser.add_argument(
    "--model_name", help="With --server: the --model_name the server was started with."
  )
  parser.add_argument(
    "--labels", default="0,1,2,3,4,5,6,7,8,9", help="Comma-separated digits to generate."
  )
  parser.add_argument("--samples_per_label", type=int, default=8)
  parser.add_argument("--seed", default="0,0", help="Two integers: the stateless sampling seed.")
  parser.add_argument(
    "--num_steps", type=int, default=10, help="Iterative-sampling rounds (JMVAE, hierarchical)."
  )
  parser.add_argument("--output", default="digits.png", help="Where the PNG goes.")
  parser.add_argument(
    "--print_request", action="store_true", help="Print the REST request body and stop."
  )
  args = parser.parse_args(argv)
  labels = [int(s) for s in args.labels.split(",")]
  if any(not 0 <= l < NUM_CLASSES for l in labels):
    parser.error(f"--labels must be digits 0-9, got {args.labels}")
  seed = [int(s) for s in args.seed.split(",")]
  if len(seed) != 2:
    parser.error(f"--seed must be two integers, got {args.seed}")
  label = one_hot_labels(labels, args.samples_per_label)
  if args.print_request:
    print(json.dumps(request_body(label, seed, args.num_steps, True)))
    return 0
  if not (args.server or args.saved_model):
    parser.error("give --saved_model (a SavedModel directory) or --server (TF Serving's address)")
  if args.server and not args.model_name:
    parser.error("--server needs --model_name")
  try:
    if args.server:
      probs = generate_rest(args.server, args.model_name, label, seed, args.num_steps)
    else:
      probs = generate_local(args.saved_model, label, seed, args.num_steps)
  except Refused as e:
    print(f"error: the model refused the request: {e}", file=sys.stderr)
    return 1
  except urllib.error.URLError as e:  # no server there, or no model of that name
    print(f"error: cannot reach {args.server} for model {args.model_name!r}: {e}", file=sys.stderr)
    return 1
  write_png(args.output, grid(probs, len(labels)))
  print(f"wrote {len(labels)} x {args.samples_per_label} digits to {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())

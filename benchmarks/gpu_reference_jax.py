r"""What one GPU could do for JMVAE-kl on MNIST: a reference in JAX, not jmvae-tf.

Why it exists: the GPU machines lent to this project's sessions have JAX but no
TensorFlow, and TensorFlow with the CUDA libraries it needs (about 2 GB of wheels)
cannot be carried to them (64 MiB a call). So the speed issue's GPU goal (the
paper's budget, 2,000 epochs of 50,000, in under 30 minutes on one H100) cannot be
measured for jmvae-tf there. This script bounds it instead, in the form the issue
names: the whole training set on the device, one XLA call per epoch (`lax.scan`
over its steps), stochastic binarisation inside the step.

It is the same model as `configs/mnist_jmvae_kl.flags`: the paper's MNIST MLPs
(3,127,450 parameters: the count is checked), the JMVAE-kl objective (alpha 1, the
alpha terms summed, the KL weight at 1 as after the warm-up), Adam (lr 1e-3, Keras'
epsilon 1e-7), float32 variables with XLA's default matmul precision. It is not the
project's code and shares none of it; its figures say what the hardware and XLA allow
for this model, not what jmvae-tf does.

  python3 benchmarks/gpu_reference_jax.py --data_dir=../shared/data/mnist --batch_sizes=100,1000

prints per batch size the examples/s of timed epochs, the time the paper's budget would
take at that rate, and the training loss per epoch (it must fall).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import struct
import time

import numpy as np

PAPER_EXAMPLES = 2000 * 50_000  # the paper's budget: 2,000 epochs of 50,000 images
PARAMETERS = 3_127_450  # what tests/test_models_jmvae.py asserts for jmvae-tf's JMVAE-kl


def read_idx(path):
  """An IDX array from a .gz file (MNIST's own format; no pickles)."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  zero, dtype, ndim = struct.unpack(">HBB", data[:4])
  if zero != 0 or dtype != 0x08:
    raise ValueError(f"{path}: not an unsigned-byte IDX file")
  shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


# Each network: a list of (fan_in, fan_out) Dense layers; ReLU between hidden layers.
NETWORKS = {
  "joint_x": [(784, 512), (512, 512)],
  "joint_w": [(10, 512), (512, 512)],
  "joint_heads": [(1024, 64), (1024, 64)],
  "enc_x": [(784, 512), (512, 512)],
  "enc_x_heads": [(512, 64), (512, 64)],
  "enc_w": [(10, 512), (512, 512)],
  "enc_w_heads": [(512, 64), (512, 64)],
  "dec_x": [(64, 512), (512, 512), (512, 784)],
  "dec_w": [(64, 512), (512, 512), (512, 10)],
}


def init_params(jax, seed=0):
  """Glorot-uniform kernels and zero biases, as Keras' Dense."""
  jnp = jax.numpy
  params, key = {}, jax.random.PRNGKey(seed)
  for name, layers in NETWORKS.items():
    params[name] = []
    for fan_in, fan_out in layers:
      key, sub = jax.random.split(key)
      limit = (6.0 / (fan_in + fan_out)) ** 0.5
      kernel = jax.random.uniform(sub, (fan_in, fan_out), jnp.float32, -limit, limit)
      params[name].append((kernel, jnp.zeros((fan_out,), jnp.float32)))
  return params


def make_epoch(jax, images, labels, batch_size, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
  """A jitted function: (params, adam state, key) -> the same after one epoch, mean loss."""
  jnp, lax = jax.numpy, jax.lax
  num_examples = images.shape[0]
  steps = num_examples // batch_size

  def mlp(layers, h):
    for kernel, bias in layers:
      h = jax.nn.relu(h @ kernel + bias)
    return h

  def heads(layers, h):
    (mk, mb), (vk, vb) = layers
    return h @ mk + mb, jax.nn.softplus(h @ vk + vb) + 1e-6

  def kl(mq, vq, mp=None, vp=None):
    mp = jnp.zeros_like(mq) if mp is None else mp
    vp = jnp.ones_like(vq) if vp is None else vp
    return 0.5 * jnp.sum(jnp.log(vp) - jnp.log(vq) + (vq + (mq - mp) ** 2) / vp - 1.0, -1)

  def decoder(layers, z):
    h = mlp(layers[:-1], z)
    kernel, bias = layers[-1]
    return h @ kernel + bias

  def loss_fn(params, x, w_index, key):
    w = jax.nn.one_hot(w_index, 10)
    m, v = heads(
      params["joint_heads"],
      jnp.concatenate([mlp(params["joint_x"], x), mlp(params["joint_w"], w)], -1),
    )
    z = m + jnp.sqrt(v) * jax.random.normal(key, m.shape)
    x_logits = decoder(params["dec_x"], z)
    nll_x = jnp.sum(jnp.logaddexp(0.0, x_logits) - x * x_logits, -1)  # Bernoulli
    nll_w = -jnp.take_along_axis(
      jax.nn.log_softmax(decoder(params["dec_w"], z)), w_index[:, None], 1
    )[:, 0]
    mx, vx = heads(params["enc_x_heads"], mlp(params["enc_x"], x))
    mw, vw = heads(params["enc_w_heads"], mlp(params["enc_w"], w))
    loss = nll_x + nll_w + kl(m, v) + kl(m, v, mx, vx) + kl(m, v, mw, vw)
    return jnp.mean(loss)

  grad_fn = jax.value_and_grad(loss_fn)

  def step(carry, i):
    params, m_state, v_state, t, perm, key = carry
    key, bits_key, z_key = jax.random.split(key, 3)
    index = lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))
    intensities = images[index].astype(jnp.float32) / 255.0
    x = (jax.random.uniform(bits_key, intensities.shape) < intensities).astype(jnp.float32)
    loss, grads = grad_fn(params, x, labels[index], z_key)
    t = t + 1.0
    m_state = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, m_state, grads)
    v_state = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, v_state, grads)
    lr_t = lr * jnp.sqrt(1 - beta2**t) / (1 - beta1**t)
    params = jax.tree.map(
      lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), params, m_state, v_state
    )
    return (params, m_state, v_state, t, perm, key), loss

  @jax.jit
  def epoch(params, m_state, v_state, t, key):
    key, perm_key = jax.random.split(key)
    perm = jax.random.permutation(perm_key, num_examples)
    carry, losses = lax.scan(step, (params, m_state, v_state, t, perm, key), jnp.arange(steps))
    params, m_state, v_state, t, _, key = carry
    return params, m_state, v_state, t, key, jnp.mean(losses)

  return epoch, steps


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--data_dir", required=True, help="directory of MNIST's IDX .gz files")
  p.add_argument("--batch_sizes", default="100,1000")
  p.add_argument("--num_train", type=int, default=50_000)
  p.add_argument(
    "--epochs", type=int, default=5, help="timed epochs per batch size (after one untimed)"
  )
  args = p.parse_args()

  import jax

  jnp = jax.numpy
  devices = jax.devices()
  print(f"jax {jax.__version__}; devices: {', '.join(d.device_kind for d in devices)}", flush=True)
  images = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"))[: args.num_train]
  labels = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz"))[: args.num_train]
  images = jax.device_put(jnp.asarray(images.reshape(len(images), -1)))
  labels = jax.device_put(jnp.asarray(labels.astype(np.int32)))
  count = sum(k.size + b.size for layers in init_params(jax).values() for k, b in layers)
  if count != PARAMETERS:
    raise SystemExit(f"parameter count {count} != {PARAMETERS}: not the paper's networks")
  print(f"parameters: {count} (jmvae-tf's JMVAE-kl: {PARAMETERS})", flush=True)
  rows = []
  for batch_size in (int(b) for b in args.batch_sizes.split(",")):
    params = init_params(jax)
    zeros = jax.tree.map(jnp.zeros_like, params)
    m_state, v_state, t, key = zeros, zeros, jnp.float32(0), jax.random.PRNGKey(1)
    epoch, steps = make_epoch(jax, images, labels, batch_size)
    started = time.perf_counter()
    params, m_state, v_state, t, key, loss = epoch(params, m_state, v_state, t, key)
    losses = [float(loss)]
    first = time.perf_counter() - started
    times = []
    for _ in range(args.epochs):
      started = time.perf_counter()
      params, m_state, v_state, t, key, loss = epoch(params, m_state, v_state, t, key)
      losses.append(float(loss))  # waits for the epoch
      times.append(time.perf_counter() - started)
    rate = steps * batch_size / statistics.median(times)
    budget_min = PAPER_EXAMPLES / rate / 60
    rows.append((batch_size, rate, budget_min, first))
    print(
      f"RESULT gpu_reference_jax batch={batch_size} examples_per_sec={rate:.0f} "
      f"paper_budget_min={budget_min:.1f} first_epoch_s={first:.1f} "
      f"loss_per_epoch={'/'.join(f'{x:.1f}' for x in losses)}",
      flush=True,
    )
  print("\n| batch | examples/s | paper's budget (2,000 x 50,000) | first epoch (compile) |")
  print("|---:|---:|---:|---:|")
  for batch_size, rate, budget_min, first in rows:
    print(f"| {batch_size} | {rate:,.0f} | {budget_min:.1f} min | {first:.1f} s |")


if __name__ == "__main__":
  main()

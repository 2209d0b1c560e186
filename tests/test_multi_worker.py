"""Training on several machines (--strategy=multi_worker), tried with two worker processes
on 127.0.0.1 (docs/DISTRIBUTED.md).

Each worker is this file run as a script (`python tests/test_multi_worker.py ...`): it
sets TF_CONFIG, makes the MultiWorkerMirroredStrategy before TensorFlow runs any op, as
runners.train does, and calls driver.train on a small slice of random digits through
the real MNIST pipeline (pipelines.mnist.train_dataset), so the workers read the global
batches a one-process run reads and keep their halves (runtime.shard_by_data).

The comparison is a one-process run with the same global batch split over the same two
replicas (MirroredStrategy over two logical CPUs, in a process of its own): a replica draws its own
sampling noise (the step seed is folded with its replica id), so this, and not a
one-replica run, is the run whose numbers the two workers must give.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
REPOSITORY_ROOT = TESTS.parent
NUM_TRAIN, NUM_EVAL, BATCH = 128, 32, 16  # 8 steps an epoch, global batch 16 = 2 x 8
STEPS = NUM_TRAIN // BATCH
EPOCHS = 3
KILL_AT_STEP = 2 * STEPS + STEPS // 2  # worker 1 dies in epoch 3 (after checkpoint 2)
LAUNCH_TIMEOUT_S = 180  # one launch of both workers; a hang fails the test, never blocks it
CHIEF_ALONE_S = 60  # how long the chief may take to notice that worker 1 is gone


def arrays():
  """The digits every run trains on: random uint8 images and labels (no files needed)."""
  rng = np.random.default_rng(7)
  images = rng.integers(0, 256, (NUM_TRAIN + NUM_EVAL, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, NUM_TRAIN + NUM_EVAL).astype(np.uint8)
  return images[:NUM_TRAIN], labels[:NUM_TRAIN], images[NUM_TRAIN:], labels[NUM_TRAIN:]


def configs(strategy: str):
  from model_configs import mnist_config

  from jmvae_tf.core import options

  model_config = mnist_config("jmvae_kl", latent_dim=4)
  train_config = options.TrainConfig.make(
    epochs=EPOCHS,
    batch_size=BATCH,
    warmup_epochs=2,
    eval_every=1,
    steps_per_execution=1,
    strategy=strategy,
  )
  return model_config, train_config


def run_training(
  model_dir: str, strategy, strategy_name: str, flags_text: str, kill_at=None, kill_signal=None
):
  """driver.train as runners.train calls it, on arrays(); `kill_at`: send this process
  `kill_signal` (SIGKILL unless given) when its input pipeline makes that global step
  (mid-epoch, by a couple of steps of read-ahead at most)."""
  import tensorflow as tf
  from stream_data import StreamData

  from jmvae_tf.training import driver  # noqa: F811  (a worker stops before the tests' imports)
  from pipelines import mnist

  train_images, train_labels, eval_images, eval_labels = arrays()
  model_config, train_config = configs(strategy_name)

  def train_dataset(start_epoch):
    dataset = mnist.train_dataset(train_images, train_labels, BATCH, 0, start_epoch)
    if kill_at is None:
      return dataset

    def die_at(step):
      if int(step) == kill_at:
        os.kill(os.getpid(), kill_signal or signal.SIGKILL)
      return step

    def watched(step, batch):
      with tf.control_dependencies([tf.py_function(die_at, [step], tf.int64)]):
        return {key: tf.identity(value) for key, value in batch.items()}

    return dataset.enumerate(start=start_epoch * STEPS).map(watched)

  stream = StreamData(
    model_config.modalities,
    train_dataset,
    STEPS,
    held_out=mnist.eval_dataset(eval_images, eval_labels, BATCH),
  )
  return driver.train(
    model_config,
    stream,
    model_dir,
    train_config,
    flags_text=flags_text,
    verbose=2,
    strategy=strategy,
  )


def mirrored_main(argv):
  """python test_multi_worker.py mirrored MODEL_DIR RESULT_JSON: the one-process run, in a
  process of its own (collective ops of earlier strategies in the pytest process can clash
  with its all-reduce: "Shape mismatch in the collective instance")."""
  model_dir, result_path = argv
  import tensorflow as tf

  from jmvae_tf.training import runtime

  (cpu,) = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  runtime.configure_cpu_threads(1, 2)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  result = run_training(model_dir, strategy, "mirrored", "--strategy=mirrored\n")
  Path(result_path).write_text(json.dumps({"history": result.history}))


def worker_main(argv):
  """python test_multi_worker.py TASK PORT0,PORT1 MODEL_DIR RESULT_JSON [KILL_AT_STEP [SIGNAL]]
  A SIGINT/SIGTERM that stops training exits as runners.train does: one line, 128 + signal."""
  task, ports, model_dir, result_path = int(argv[0]), argv[1].split(","), argv[2], argv[3]
  kill_at = int(argv[4]) if len(argv) > 4 else None
  kill_signal = signal.Signals[argv[5]] if len(argv) > 5 else None
  os.environ["TF_CONFIG"] = json.dumps(
    {
      "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
      "task": {"type": "worker", "index": task},
    }
  )

  from jmvae_tf.training import callbacks, runtime

  runtime.configure_cpu_threads(1, 2)
  strategy = runtime.make_strategy("multi_worker")  # before any op runs
  try:
    result = run_training(
      model_dir,
      strategy,
      "multi_worker",
      f"--strategy=multi_worker\n--task={task}\n",
      kill_at,
      kill_signal,
    )
  except callbacks.TrainingInterrupted as e:
    print(f"interrupted: {e}", file=sys.stderr, flush=True)
    status = 128 + e.signum
  else:
    status = None
  if status is not None:
    sys.exit(status)  # outside the except clause, as runners.train exits
  Path(result_path).write_text(
    json.dumps(
      {
        "pid": os.getpid(),
        "chief": runtime.is_chief(strategy),
        "initial_epoch": result.initial_epoch,
        "history": result.history,
      }
    )
  )


if __name__ == "__main__":
  sys.path[:0] = [str(REPOSITORY_ROOT), str(TESTS)]
  if sys.argv[1] == "mirrored":
    mirrored_main(sys.argv[2:])
  else:
    worker_main(sys.argv[1:])
  sys.exit(0)


# --- the tests (pytest imports what follows; the workers stop above) -----------------------

import tensorflow as tf  # noqa: E402

from jmvae_tf.training import driver, run_dir  # noqa: E402


def free_ports(n: int):
  """n ports free now, outside the kernel's ephemeral range. The workers bind them seconds
  later (after importing TensorFlow); a port from bind(0) could meanwhile go to another
  test process's bind(0) or outgoing connection, which only take ephemeral ports."""
  range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
  low, high = map(int, range_file.read_text().split()) if range_file.exists() else (32768, 60999)
  gaps = [(start, end) for start, end in ((10_000, low), (high + 1, 65_536)) if end - start > 1000]
  if not gaps:  # the whole range is ephemeral: the kernel's choice is the best there is
    gaps = [(0, 1)]
  rng = random.SystemRandom()  # apart from any seeded generator
  ports = []
  for _ in range(1000):
    start, end = max(gaps, key=lambda gap: gap[1] - gap[0])
    with socket.socket() as s:
      try:
        s.bind(("", rng.randrange(start, end)))  # every address, as the gRPC server binds
      except OSError:  # in use
        continue
      port = s.getsockname()[1]
    if port not in ports:
      ports.append(port)
    if len(ports) == n:
      return ports
  raise RuntimeError(f"no {n} free ports found")


def launch(model_dir: Path, work: Path, name: str, kill_at=None, kill_signal="SIGKILL"):
  """Starts both workers (worker 0 is the chief); returns [(process, result path)].
  `kill_at`: worker 1 sends itself `kill_signal` at that global step."""
  ports = ",".join(str(p) for p in free_ports(2))
  procs = []
  for task in (0, 1):
    temp = work / f"tmp-{name}-{task}"  # each worker's TMPDIR: what it leaves shows there
    temp.mkdir()
    result = work / f"result-{name}-{task}.json"
    args = [sys.executable, "-u", __file__, str(task), ports, str(model_dir), str(result)]
    if kill_at is not None and task == 1:
      args += [str(kill_at), kill_signal]
    env = dict(os.environ, TMPDIR=str(temp), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_CONFIG", None)
    log = open(work / f"log-{name}-{task}.txt", "w")
    procs.append(
      (subprocess.Popen(args, cwd=REPOSITORY_ROOT, env=env, stdout=log, stderr=log), result, log)
    )
  return procs


def finish(procs, timeout: float):
  """Waits for the workers (killing what is left after `timeout`); their exit codes."""
  deadline = time.monotonic() + timeout
  codes = []
  for proc, _, log in procs:
    try:
      codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
      proc.kill()
      codes.append(proc.wait())
    log.close()
  return codes


def tail(work: Path, name: str) -> str:
  return "\n".join(
    f"--- worker {t}:\n" + (work / f"log-{name}-{t}.txt").read_text()[-2500:] for t in (0, 1)
  )


def epoch_losses(log_dir: Path) -> dict:
  """epoch -> epoch_loss from the TensorBoard events under log_dir/train."""
  losses = {}
  for path in sorted(tf.io.gfile.glob(str(log_dir / "train" / "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "epoch_loss":
          losses[event.step] = float(tf.make_ndarray(value.tensor))
  return losses


def checkpoint_tensors(prefix: str) -> dict:
  reader = tf.train.load_checkpoint(prefix)
  return {
    name: reader.get_tensor(name)
    for name in reader.get_variable_to_shape_map()
    if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
  }


def start_two_replicas(model_dir: Path, work: Path):
  """Starts the one-process run (same data, model and global batch, two replicas, one per
  logical CPU, a checkpoint after each epoch) in a process of its own; see mirrored_main."""
  result = work / "result-mirrored.json"
  log = open(work / "log-mirrored.txt", "w")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
  env.pop("TF_CONFIG", None)
  args = [sys.executable, "-u", __file__, "mirrored", str(model_dir), str(result)]
  proc = subprocess.Popen(args, cwd=REPOSITORY_ROOT, env=env, stdout=log, stderr=log)
  return proc, result, log


def chief_fails_alone(procs, work: Path, name: str, model_dir: Path) -> str:
  """The chief cannot go on without worker 1: its next all-reduce fails ("Collective ops is
  aborted by: ... Connection reset by peer", or "Socket closed") and it exits with that
  error by itself, status 1; it is not killed here. Returns the latest checkpoint, which
  must be the last finished epoch's, ckpt-2."""
  chief_exit = finish(procs[:1], timeout=CHIEF_ALONE_S)
  assert chief_exit == [1] and "Collective ops is aborted" in tail(work, name), (
    chief_exit,
    tail(work, name),
  )
  latest = run_dir.find_checkpoint(str(model_dir))
  assert latest and latest.endswith("ckpt-2"), (latest, tail(work, name))
  return latest


def assert_same_checkpoint(prefix: str, expected_prefix: str):
  got, want = checkpoint_tensors(prefix), checkpoint_tensors(expected_prefix)
  assert set(got) == set(want)
  for name in want:
    if isinstance(want[name], bytes):  # the run's config the checkpoint carries
      assert got[name] == want[name], name
      continue
    # Rounding only (measured: at most 7.1e-7 apart): one Adam step moves a weight by ~1e-3,
    # so a worker reading the wrong part of a batch would be far outside.
    np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_two_workers_train_as_two_replicas_and_resume_after_one_is_killed(tmp_path):
  """Two workers train 3 epochs; worker 1 is SIGKILLed in epoch 3 (its input pipeline kills
  it); the chief fails on its own; both are restarted and resume from the chief's
  checkpoint 2 (our own checkpoints, not BackupAndRestore). Compared with the one-process
  two-replica run: every checkpointed tensor (weights, Adam's moments and step, the loss
  trackers, epoch) of checkpoints 2 and 3, and each epoch's training and validation loss."""
  model_dir, work, expected_dir = tmp_path / "model", tmp_path / "work", tmp_path / "expected"
  work.mkdir()

  killed = launch(model_dir, work, "killed", kill_at=KILL_AT_STEP)
  mirrored = start_two_replicas(expected_dir, work)  # beside the workers
  assert finish([mirrored], timeout=LAUNCH_TIMEOUT_S) == [0], (
    work / "log-mirrored.txt"
  ).read_text()[-2500:]
  expected_history = json.loads(mirrored[1].read_text())["history"]
  assert finish(killed[1:], timeout=LAUNCH_TIMEOUT_S) == [-signal.SIGKILL], tail(work, "killed")
  latest = chief_fails_alone(killed, work, "killed", model_dir)
  assert_same_checkpoint(latest, str(expected_dir / "ckpt" / "ckpt-2"))

  restarted = launch(model_dir, work, "restarted")
  assert finish(restarted, timeout=LAUNCH_TIMEOUT_S) == [0, 0], tail(work, "restarted")
  results = [json.loads(result.read_text()) for _, result, _ in restarted]
  assert [r["chief"] for r in results] == [True, False]
  assert [r["initial_epoch"] for r in results] == [2, 2]
  assert "Resuming from" in (work / "log-restarted-0.txt").read_text()
  assert_same_checkpoint(
    run_dir.find_checkpoint(str(model_dir)), str(expected_dir / "ckpt" / "ckpt-3")
  )
  # Each epoch's loss (Keras' logs: the mean over both workers' examples): epochs 1-2 from
  # the killed launch's summaries, epoch 3 from the restarted one's.
  np.testing.assert_allclose(
    [epoch_losses(model_dir / "logs")[e] for e in range(EPOCHS)],
    expected_history["loss"],
    rtol=1e-5,
  )
  for key in ("loss", "val_loss"):
    np.testing.assert_allclose(results[0]["history"][key], expected_history[key][2:], rtol=1e-5)
    assert results[1]["history"][key] == results[0]["history"][key]

  # Only the chief wrote the model directory: its files, and event files named by its pid.
  chief_pids = {str(results[0]["pid"]), str(killed[0][0].pid)}
  assert sorted(p.name for p in model_dir.iterdir()) == sorted(
    [".lock", "ckpt", "flags.txt", "logs", "run.json", "train.json"]
  )
  assert (model_dir / "flags.txt").read_text() == "--strategy=multi_worker\n--task=0\n"
  events = list((model_dir / "logs").rglob("events.out.tfevents.*"))
  writers = {re.search(r"\.(\d+)\.\d+\.v2$", p.name).group(1) for p in events}
  assert events and writers <= chief_pids, (writers, chief_pids)
  # Worker 1 saved with the chief into a temporary directory and removed it (the killed
  # launch's stays: a SIGKILL leaves no time to clean up).
  assert not [p for p in (work / "tmp-restarted-1").iterdir() if p.name.startswith("jmvae-")]
  leftovers = [p.name for p in (work / "tmp-killed-1").iterdir() if p.name.startswith("jmvae-")]
  assert len(leftovers) == 1 and leftovers[0].startswith("jmvae-worker-"), leftovers


def test_a_sigterm_to_one_worker_stops_it_at_the_next_step_and_the_chief_fails(tmp_path):
  """Worker 1 alone gets SIGTERM in epoch 3 (as when one machine is preempted): it stops at
  its next step boundary with the one line runners.train prints (exit 143); the chief cannot
  go on alone and fails at its next all-reduce (exit 1). The epochs finished before stay
  saved: checkpoint 2 is the latest, whole, as the resume test above restarts from."""
  model_dir, work = tmp_path / "model", tmp_path / "work"
  work.mkdir()
  procs = launch(model_dir, work, "sigterm", kill_at=KILL_AT_STEP, kill_signal="SIGTERM")
  assert finish(procs[1:], timeout=LAUNCH_TIMEOUT_S) == [128 + signal.SIGTERM], tail(
    work, "sigterm"
  )
  log = (work / "log-sigterm-1.txt").read_text()
  assert "interrupted: stopped by SIGTERM in epoch 3 after step" in log, log[-2500:]
  # The checkpoint it names is the chief's, in --model_dir: its own copy goes as it exits.
  kept = f"the last good checkpoint {model_dir / 'ckpt' / 'ckpt-2'} is kept: a rerun with "
  assert kept + "this --model_dir starts at epoch 3" in log, log[-2500:]
  assert checkpoint_tensors(chief_fails_alone(procs, work, "sigterm", model_dir))  # reads whole
  # A SIGTERM, unlike a SIGKILL, leaves time to remove the worker's own copy.
  assert not [p for p in (work / "tmp-sigterm-1").iterdir() if p.name.startswith("jmvae-")]


def test_a_worker_other_than_the_chief_writes_nothing_to_the_model_dir(tmp_path, monkeypatch):
  """The non-chief path on its own, in-process: it trains, saves every epoch into a
  temporary directory that it removes, and leaves the model directory untouched (here it
  does not even exist: the chief creates it)."""
  temp = tmp_path / "tmp"
  temp.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(temp))
  monkeypatch.setattr(driver, "is_chief", lambda strategy: False)
  saved = []
  real_save = tf.train.CheckpointManager.save

  def save(self, *args, **kwargs):
    saved.append(real_save(self, *args, **kwargs))
    return saved[-1]

  monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
  model_dir = tmp_path / "model"
  result = run_training(str(model_dir), tf.distribute.get_strategy(), "multi_worker", "x\n")
  assert result.history["loss"] and len(saved) == EPOCHS
  assert all(path.startswith(str(temp / "jmvae-worker-")) for path in saved), saved
  assert not model_dir.exists()
  assert not [p for p in temp.iterdir() if p.name.startswith("jmvae-")]

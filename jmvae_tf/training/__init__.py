"""Training machinery: the driver (`driver.train`), the model directory (run files,
checkpoints, lock), the loop's callbacks, BatchNorm recalibration, the strategy, threads and
precision for this machine, and TensorBoard summaries."""

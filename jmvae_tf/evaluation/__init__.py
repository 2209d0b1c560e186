"""Evaluation of trained models: the paper's conditional log-likelihood estimators (eq 11,
appendix A), IWAE estimates and Table 1. Everything here calls the models' inference API.

  estimators  conditional_log_likelihood, iwae_log_likelihood, iwae_conditional_log_likelihood
  table       Table 1 columns, the paper's numbers, evaluation of a model over a data set
"""

from jmvae_tf.evaluation.estimators import (
  conditional_log_likelihood,
  importance_log_weights,
  iwae_conditional_log_likelihood,
  iwae_log_likelihood,
  log_mean_exp,
)

__all__ = [
  "conditional_log_likelihood",
  "importance_log_weights",
  "iwae_conditional_log_likelihood",
  "iwae_log_likelihood",
  "log_mean_exp",
]

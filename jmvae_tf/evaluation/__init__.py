"""Evaluation of trained models: the paper's conditional log-likelihood estimators (eq 11,
appendix A), IWAE estimates, iterative sampling (eq 6) and Table 1.

  estimators  conditional_log_likelihood, iwae_log_likelihood, iwae_conditional_log_likelihood
  iterative   iterative_impute, imputation_trajectory
  table       Table 1 columns, the paper's numbers, evaluation of a model over a data set
"""

from jmvae_tf.evaluation.estimators import (conditional_log_likelihood, estimators_for, importance_log_weights,
                                            iwae_conditional_log_likelihood, iwae_log_likelihood, log_mean_exp,
                                            uses_iterative_sampling)
from jmvae_tf.evaluation.iterative import imputation_trajectory, iterative_impute, supports_iterative_sampling

__all__ = ["conditional_log_likelihood", "estimators_for", "importance_log_weights",
           "iwae_conditional_log_likelihood", "iwae_log_likelihood", "log_mean_exp", "uses_iterative_sampling",
           "imputation_trajectory", "iterative_impute", "supports_iterative_sampling"]

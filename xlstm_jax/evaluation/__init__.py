"""Evaluation beyond the validation loss: synthetic-task accuracy per test length, length
extrapolation, text samples and their figures.

  xlstm_jax.evaluation.task_accuracy   length_accuracy(logits_fn, task, lengths, ...)
  xlstm_jax.evaluation.extrapolation   extrapolation_curve(model, params, stream, context, ...),
                                       token_losses, max_factor_within, check_factors,
                                       document_stream, packed_stream
  xlstm_jax.evaluation.samples         text_samples(model, params, tokenizer, prompts, ...)
  xlstm_jax.evaluation.plots           plot_extrapolation, plot_extrapolation_models,
                                       plot_length_accuracy (PNG; import it by name: it loads
                                       matplotlib, which training never needs)
  xlstm_jax.evaluation.workdir         evaluate_workdir, report_lines, validation_stream: a run's
                                       workdir evaluated (python -m xlstm_jax.eval)
"""

from xlstm_jax.evaluation.extrapolation import (DEFAULT_FACTORS, check_factors,
                                                document_stream, extrapolation_curve,
                                                max_factor_within, packed_stream, token_losses)
from xlstm_jax.evaluation.samples import DEFAULT_PROMPTS, text_samples
from xlstm_jax.evaluation.task_accuracy import length_accuracy

__all__ = ["DEFAULT_FACTORS", "DEFAULT_PROMPTS", "check_factors", "document_stream",
           "extrapolation_curve", "length_accuracy", "max_factor_within", "packed_stream",
           "text_samples", "token_losses"]

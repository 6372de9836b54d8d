"""Evaluation beyond the validation loss: synthetic-task accuracy per test length.

  xlstm_jax.evaluation.task_accuracy   length_accuracy(logits_fn, task, lengths, ...)
The validation loss/perplexity of a run lives in xlstm_jax.training.evaluate (eval.py).
"""

from xlstm_jax.evaluation.task_accuracy import length_accuracy

__all__ = ["length_accuracy"]

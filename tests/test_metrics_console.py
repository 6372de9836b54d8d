"""metrics.jsonl truncated to the restored step, TensorBoard purge, the console's
steady-state ETA, evaluation lines and closing summary."""

import io
import json

from xlstm_jax.training import console
from xlstm_jax.training.metrics import MetricsWriter, truncate_jsonl


def _rows(path):
  return [json.loads(l) for l in path.read_text().splitlines()]


def test_truncate_drops_rows_past_the_step_and_a_torn_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 9))
                  + '{"step": 9, "lo')
  assert truncate_jsonl(path, 5) == 4
  assert [r["step"] for r in _rows(path)] == [1, 2, 3, 4, 5]
  assert truncate_jsonl(path, 5) == 0
  assert truncate_jsonl(tmp_path / "absent.jsonl", 3) == 0


def test_writer_resumed_at_a_step_continues_from_it(tmp_path):
  first = MetricsWriter(tmp_path)
  for s in range(1, 7):
    first.write(s, {"loss": float(s)})
  first.close()
  again = MetricsWriter(tmp_path, resume_step=4)  # fallback: checkpoint 4 restored
  for s in range(5, 9):
    again.write(s, {"loss": 10.0 + s})
  again.close()
  rows = _rows(tmp_path / "metrics.jsonl")
  assert [r["step"] for r in rows] == list(range(1, 9))
  assert [r["loss"] for r in rows] == [1, 2, 3, 4, 15, 16, 17, 18]


def test_tensorboard_gets_a_purge_step_on_resume(tmp_path, monkeypatch):
  import tensorboardX  # noqa: PLC0415
  seen = []
  real = tensorboardX.SummaryWriter

  def spy(logdir, **kwargs):
    seen.append(kwargs.get("purge_step"))
    return real(logdir, **kwargs)
  monkeypatch.setattr(tensorboardX, "SummaryWriter", spy)
  MetricsWriter(tmp_path).close()               # fresh: nothing to purge
  MetricsWriter(tmp_path, resume_step=40).close()
  assert seen == [None, 41]


def test_eta_ignores_the_compile_steps():
  """A 60 s first step (compile) then 0.5 s steps: the ETA is from the 0.5 s steps."""
  p = console.Progress(first=0, total=100, stream=io.StringIO())
  times = {1: 60.0, 2: 60.5, 3: 61.0, 4: 61.5}
  rates = [p.rate(step, t) for step, t in times.items()]
  assert rates[:2] == [None, None]
  assert rates[2] == rates[3] == 2.0


def test_progress_line_says_measuring_then_an_eta():
  out = io.StringIO()
  p = console.Progress(first=10, total=20, stream=out)
  p.update(11, 3.0)
  assert "measuring, ETA ?" in out.getvalue()


def test_evaluation_line_and_summary(tmp_path):
  out = io.StringIO()
  p = console.Progress(first=0, total=10, stream=out)
  p.evaluation(10, {"eval_loss": 1.5, "eval_perplexity": 4.4817})
  assert "eval at step 10: loss 1.5000, perplexity 4.482" in out.getvalue()
  text = console.summary(tmp_path, (4, 10), 6 * 512, 125.0, 1.25, 1.5, stream=out)
  assert "steps 5-10 (6 run, 3,072 tokens) in 2m05s" in text
  assert "final train loss 1.2500, eval loss 1.5000" in text
  assert f"{tmp_path}/checkpoints" in text and f"{tmp_path}/metrics.jsonl" in text
  assert f"{tmp_path}/tensorboard" in text
  assert "eval loss n/a" in console.summary(tmp_path, (0, 2), 10, 1.0, 2.0, None,
                                            stream=out)
  assert "already at step 3" in console.summary(tmp_path, (3, 3), 0, 1.0, None, None,
                                                stream=out)

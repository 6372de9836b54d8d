"""The ablation report: rows, changes and seed ranges from results.jsonl, the paper's table."""

import json
import math

import pytest

from xlstm_jax.scaling import ablation_report as ar

COMMON = {"num_steps": 600, "batch_size": 16, "seq_len": 64}


def _result(loss, **overrides):
  return {"name": "x", "overrides": {**overrides, **COMMON}, "params": 1234, "tokens": 9600,
          "flops": 1e9, "loss": loss}


def _write(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return path


def _gating_results():
  rows = []
  for seed, shift in ((0, 0.0), (1, 0.02)):
    for k, (igate, fgate) in enumerate(ar.PAPER_GATING):
      # loss ordered like the paper's perplexities, so the ranks agree
      loss = math.log(ar.PAPER_GATING[(igate, fgate)][1] / 10) + shift
      rows.append(_result(loss, **{"model.igate_mode": igate, "model.fgate_mode": fgate,
                                   "seed": seed}))
  return rows


def test_gating_rows_changes_ranges_and_rank():
  rows = ar.gating_rows(_gating_results())
  assert [r["row"] for r in rows] == [v[0] for v in ar.PAPER_GATING.values()]
  default = rows[-1]
  assert (default["igate_mode"], default["fgate_mode"]) == ar.DEFAULT_GATES
  assert default["change"] == pytest.approx(0.0, abs=1e-9)
  # seeds differ by +0.02 in loss: exp(0.02) - 1 = 2.02% around the mean
  lo, hi = default["change_range"]
  assert hi - lo == pytest.approx(100 * (math.exp(0.02) - 1) / ((1 + math.exp(0.02)) / 2),
                                  rel=1e-6)
  no_gates = rows[0]
  assert no_gates["seeds"] == 2
  assert no_gates["change"] == pytest.approx(no_gates["paper_change"], rel=1e-6)
  assert no_gates["paper_change"] == pytest.approx(100 * (13.95 / 13.43 - 1))
  assert ar.rank_correlation([r["ppl"] for r in rows], [r["paper_ppl"] for r in rows]) == \
      pytest.approx(1.0)
  assert ar.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_gating_rows_errors():
  with pytest.raises(ValueError, match=r"no row in the paper's table"):
    ar.gating_rows([_result(1.0, **{"model.igate_mode": "learned",
                                    "model.fgate_mode": "nonsense"})])
  with pytest.raises(ValueError, match="default row"):
    ar.gating_rows([_result(1.0, **{"model.igate_mode": "fixed", "model.fgate_mode": "fixed"})])


def test_load_results_names_the_bad_line(tmp_path):
  path = tmp_path / "r.jsonl"
  path.write_text(json.dumps(_result(1.0)) + "\n{oops\n")
  with pytest.raises(ValueError, match=r"r.jsonl:2 is not valid JSON .*'\{oops'"):
    ar.load_results(path)
  path.write_text(json.dumps({"loss": 1.0}) + "\n")
  with pytest.raises(ValueError, match=r"r.jsonl:1 has no 'params'"):
    ar.load_results(path)
  path.write_text("\n")
  with pytest.raises(ValueError, match="r.jsonl' holds no runs"):
    ar.load_results(path)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    ar.load_results(tmp_path / "missing.jsonl")


def test_component_rows_name_the_change():
  results = [_result(1.0), _result(1.1, **{"model.igate": "sigmoid"}),
             _result(0.9, **{"model.slstm_at": []}),
             _result(1.3, **{"model.igate": "sigmoid", "model.normalizer": "none"})]
  rows = ar.component_rows(results)
  assert [r["change_name"] for r in rows] == ["base (unchanged)", "igate=sigmoid",
                                             "slstm_at=[]", "igate=sigmoid, normalizer=none"]
  assert rows[1]["change"] == pytest.approx(100 * (math.exp(0.1) - 1))
  assert rows[2]["change"] < 0
  assert [r.get("against") for r in rows] == [None, None, None, "igate=sigmoid"]
  assert rows[3]["change_vs"] == pytest.approx(100 * (math.exp(0.2) - 1))
  table = "\n".join(ar.component_table(rows))
  assert "| igate=sigmoid, normalizer=none | 3.669 | +34.99% | +22.14% vs igate=sigmoid |" in table


def test_write_report_and_cli(tmp_path):
  gating = _write(tmp_path / "gating.jsonl", _gating_results())
  components = _write(tmp_path / "comp.jsonl",
                      [_result(1.0), _result(1.2, **{"model.normalizer": "none"}),
                       _result(1.0, **{"model.stabilize": False}) | {"params": 1300}])
  ar.main([f"--gating={gating}", f"--components={components}", f"--out={tmp_path / 'out'}"])
  text = (tmp_path / "out" / "ablations.md").read_text()
  assert "| Forget Gate + Input Gate | learned | learned |" in text
  assert "Spearman) of our perplexities with the paper's over these 7 rows: +1.00" in text
  assert "`stabilize=False` lands +0.0000% from the base" in text
  assert "(1,234 to 1,300 parameters, " in text and "(1,234 parameters, " in text
  assert "| normalizer=none |" in text and "| Adding matrix memory | xLSTM[7:1] |" in text
  for png in ("ablations_gating.png", "ablations_components.png"):
    assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"
  with pytest.raises(SystemExit):   # a missing file is a usage error naming the path
    ar.main([f"--gating={tmp_path / 'missing.jsonl'}", f"--out={tmp_path}"])

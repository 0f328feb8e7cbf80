"""``benchmarks/accelerator.py --smoke``: every GPU row runs on the CPU at tiny sizes, so the
script is known to work before a lent GPU's short minutes are spent on it."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ["per_step", "batch", "dtype", "whole_run", "print_size"]
# A stand-in for the peer Python: answers peer_pastiche.py's --serve protocol (a ready line,
# then one line per "run N") at 0.5 s a step, so the alternating rounds run without torch.
FAKE_PEER = """#!/bin/sh
echo '{"ready": true}'
while read line; do
  [ "$line" = quit ] && exit 0
  echo '{"sec_per_step": 0.5}'
done
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "accelerator.py"), "--smoke", "--out", str(tmp_path / "acc")]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600)


def test_smoke_runs_every_row_and_writes_json_and_tables(shared_images, tmp_path):
    peer = tmp_path / "peer-python"
    peer.write_text(FAKE_PEER)
    peer.chmod(0o755)
    done = run(tmp_path, "--peer-python", str(peer))
    assert done.returncode == 0, done.stderr[-3000:]
    first = done.stdout.splitlines()[:4]
    assert first[0].startswith("machine: ") and "avx512f" in first[0] and "jax " in first[0]
    assert any('pip install -U "jax[cuda12]"' in line for line in first)  # no GPU here
    result = json.loads((tmp_path / "acc.json").read_text())
    assert list(result["rows"]) == ROWS
    steps = result["rows"]["per_step"]
    assert {row["optimizer"] for row in steps} == {"adam", "lbfgs"}
    for row in steps:
        assert row["pastiche_s_per_step"] == 0.5 and row["speed_ratio"] == 0.5 / row["jnst_s_per_step"] > 0
    assert [row["batch"] for row in result["rows"]["batch"]] == [1, 4]
    assert all(row["images_per_s"] > 0 for row in result["rows"]["batch"])
    assert [row["dtype"] for row in result["rows"]["dtype"]] == ["float32", "bfloat16"]
    assert [row["cache"] for row in result["rows"]["whole_run"]] == ["cold", "warm"]
    (big,) = result["rows"]["print_size"]
    assert big["tile"] == 64 and big["tiles"] > 1 and big["s_per_step"] > 0
    tables = (tmp_path / "acc.md").read_text()
    assert all(f"### {name}\n\n| " in tables for name in ROWS)


def test_rows_past_the_budget_are_skipped_and_said(shared_images, tmp_path):
    done = run(tmp_path, "--budget", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no peer Python" not in done.stdout and "peer (pastiche) rows: none" in done.stdout
    result = json.loads((tmp_path / "acc.json").read_text())
    assert all(result["rows"][name].startswith("skipped: ") for name in ROWS)

"""The pastiche side of a comparison: ``peer_pastiche.py --serve`` as a long-lived subprocess of
the peer Python (torch and pastiche live only there), and pastiche's names for jnst's layers."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

PEER_SCRIPT = Path(__file__).with_name("peer_pastiche.py")
PEER_OPTIMIZERS = ("adam", "lbfgs")
PEER_DEVICES = {"cpu": "cpu", "gpu": "cuda"}


def pastiche_layer(name: str) -> str:
    """pastiche's name for a jnst layer: jnst ``blockN_convM`` (post-ReLU) is ``blockN_reluM``."""
    return name.replace("_conv", "_relu")


class PeerProcess:
    """``peer_pastiche.py --serve`` under the peer Python: send "run N", read one JSON line back."""

    def __init__(self, python: str, args: list[str]):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        cmd = [python, str(PEER_SCRIPT), "--serve", *args]
        pipe = subprocess.PIPE
        self._proc = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=self._stderr, text=True)
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"pastiche peer exited ({self._proc.wait()}):\n{self._stderr.read()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"pastiche peer: {answer['error']}")
        return answer

    def run(self, steps: int) -> dict:
        self._proc.stdin.write(f"run {steps}\n")
        self._proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        try:
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peer_args(config, size: int, device: str, content: Path, style: Path, threads: int = 0) -> list[str]:
    """``peer_pastiche.py``'s arguments for jnst's ``config`` (its layers and optimiser) at ``size``."""
    layers = ["--content-layers", *(pastiche_layer(n) for n, _ in config.content_layers)]
    layers += ["--style-layers", *(pastiche_layer(n) for n, _ in config.style_layers)]
    return [f"--size={size}", f"--optimizer={config.optimizer}", f"--device={device}", f"--content={content}",
            f"--style={style}", f"--threads={threads}", *layers]  # fmt: skip

"""Time pastiche (PyTorch) on the problem jnst's benchmarks use; run with the PEER Python.

Needs torch and pastiche, never jnst. Builds ``PasticheArtist`` for tubingen x starry_night at
long side ``--size`` (content and style both, as jnst sizes them), with jnst's default layers in
pastiche's names (jnst ``blockN_convM`` is post-ReLU, pastiche's ``blockN_reluM``), runs
``--warmup`` untimed steps, then times ``artist.draw()`` (one loss-and-gradient evaluation and
an optimiser update; pastiche's L-BFGS has max_iter=1).

  one-shot:  python peer_pastiche.py --size 256 --steps 10 --rounds 3   -> one JSON line
  --serve:   a "ready" JSON line, then one JSON line per stdin line "run N"; "quit" or EOF ends.
             Lets benchmarks/test_peer.py alternate jnst and pastiche rounds with one torch start-up.

Every JSON line has size [h, w], sec_per_step, steps, peak_rss_mib, device_peak_mib (CUDA's
max_memory_allocated, else null), device, torch, threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _system import peak_rss_mib  # this script's folder is first on sys.path

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT_LAYERS = ["block5_relu4"]
STYLE_LAYERS = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, required=True, help="long side of content and style")
    parser.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round (one-shot mode)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (one-shot mode)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after loading")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--content", type=Path, default=IMAGES / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=IMAGES / "starry_night.jpg")
    parser.add_argument("--content-layers", nargs="+", default=CONTENT_LAYERS)
    parser.add_argument("--style-layers", nargs="+", default=STYLE_LAYERS)
    parser.add_argument("--serve", action="store_true", help="answer 'run N' lines on stdin")
    return parser.parse_args(argv)


class Peer:
    """A PasticheArtist on one device, with per-round timing and the facts each answer carries."""

    def __init__(self, args: argparse.Namespace):
        import torch
        from pastiche.pastiche import PasticheArtist

        self.torch = torch
        if args.threads:
            torch.set_num_threads(args.threads)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        self.artist = PasticheArtist(
            str(args.content),
            [str(args.style)],
            optimizer=args.optimizer,
            content_layers=args.content_layers,
            style_layers=args.style_layers,
            size=args.size,
            style_size=args.size,
            device=self.device,
        )
        self.run(args.warmup)

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize(self.device)

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` calls of ``artist.draw()``."""
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            self.artist.draw()
        self._sync()
        return (time.perf_counter() - start) / max(steps, 1)

    def facts(self, **extra: object) -> dict[str, object]:
        cuda = self.device.startswith("cuda")
        return {
            "size": self.artist.content_size,
            "style_size": self.artist.style_sizes[0],
            **extra,
            "peak_rss_mib": peak_rss_mib(),
            "device_peak_mib": self.torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else None,
            "device": self.torch.cuda.get_device_name(self.device) if cuda else "cpu",
            "torch": self.torch.__version__,
            "threads": self.torch.get_num_threads(),
        }


def serve(peer: Peer) -> None:
    """Answer "run N" lines until "quit" or EOF, one JSON line each."""
    emit(peer.facts(ready=True))
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            return
        if len(words) == 2 and words[0] == "run" and words[1].isdigit():
            steps = int(words[1])
            emit(peer.facts(sec_per_step=peer.run(steps), steps=steps))
        else:
            emit({"error": f"unknown command {line.strip()!r}; expected 'run N' or 'quit'"})


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    peer = Peer(args)
    if args.serve:
        serve(peer)
        return
    times = [peer.run(args.steps) for _ in range(args.rounds)]
    emit(peer.facts(sec_per_step=statistics.median(times), steps=args.steps, rounds=times))


if __name__ == "__main__":
    main()

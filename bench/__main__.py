"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` (or the named ones) in turn.

Each module exposes ``main() -> None`` and writes its own results under bench/results/.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    available = sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    chosen = argv or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    for name in chosen:
        started = time.perf_counter()
        log.info("benchmark %s: start", name)
        importlib.import_module(f"bench.bench_{name}").main()
        log.info("benchmark %s: done in %.1f s", name, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

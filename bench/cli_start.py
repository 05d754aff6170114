"""Cold start of `pilotbot chat -c "status <slug>"` against `python -c pass`, same run, alternating.

.venv/bin/python bench/cli_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/cli.db"}
        pilotbot = str(BIN / "pilotbot")
        subprocess.run([pilotbot, "demo"], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        cli, bare = [], []
        for _ in range(args.runs):
            bare.append(run([sys.executable, "-c", "pass"], env))
            cli.append(run([pilotbot, "chat", "-c", "status support-drafts"], env))
        mc, mb = statistics.median(cli), statistics.median(bare)
        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; {args.runs} runs each, alternating")
        print(
            f"pilotbot chat -c 'status support-drafts': median {mc * 1000:.0f} ms "
            f"(min {min(cli) * 1000:.0f}, max {max(cli) * 1000:.0f})"
        )
        print(f"python -c pass: median {mb * 1000:.0f} ms (min {min(bare) * 1000:.0f}, max {max(bare) * 1000:.0f})")
        print(f"ratio {mc / mb:.1f}x; target median < 500 ms: {'met' if mc < 0.5 else 'NOT met'}")
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "adapters.cli", "chat", "-c", "status support-drafts"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        top: dict[str, int] = {}
        for line in out.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = (p.strip() for p in line.removeprefix("import time:").split("|"))
            if not cumulative.isdigit():
                continue
            pkg = name.strip().split(".")[0]
            if name.strip() == pkg:  # top-level packages only: their cumulative time includes children
                top[pkg] = max(top.get(pkg, 0), int(cumulative))
        print("largest top-level imports (cumulative, one run):")
        for pkg, us in sorted(top.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {pkg:<20} {us / 1000:6.0f} ms")


if __name__ == "__main__":
    main()

"""Summarize py-spy's collapsed stacks: where the workers spent their CPU.

``python -m benchmarks --only throughput --profile DIR`` writes one file per
worker; ``python -m benchmarks.profiles DIR`` prints, for each, the functions
with the largest share of samples, inclusive (the function and what it
called) and self (the function's own lines).
"""

import argparse
import re
from collections import Counter
from pathlib import Path

# site-packages paths are long and say nothing: keep the package-relative part.
_SITE = re.compile(r"\(/\S*/site-packages/")


def load(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """(inclusive, self, total) sample counts per frame."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_SITE.sub("(", frame) for frame in stack.split(";")]
        total += samples
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    return inclusive, own, total


def report(path: Path, top: int) -> str:
    inclusive, own, total = load(path)
    lines = [f"== {path.name}: {total} samples"]
    for title, counts in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title}")
        lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counts.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiles")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only files whose name contains this")
    args = parser.parse_args()
    for path in sorted(args.directory.glob("*.txt")):
        if args.match in path.name and path.stat().st_size:
            print(report(path, args.top), end="\n\n")


if __name__ == "__main__":
    main()

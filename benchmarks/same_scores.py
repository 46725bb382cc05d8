"""Whether two ``quality_real.py`` reports hold the same scores (timings and machine aside): the
check that a change of structure changed no behaviour. Run the same fixed-step command before
and after, e.g. ``quality_real.py --steps 60 --seeds 0 > before.json``, then
``.venv/bin/python benchmarks/same_scores.py before.json after.json``."""

import argparse
import json
from pathlib import Path

from harness import print_report

NOT_SCORES = ("seconds", "load", "steps_per")  # keys that time or describe the run


def differences(before, after, path: str = "") -> list[dict]:
    """Every score that differs, with its path in the report."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [d for key in sorted(set(before) | set(after))
                if not any(word in key for word in NOT_SCORES)
                for d in differences(before.get(key), after.get(key), f"{path}/{key}")]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after))
                for d in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [{"path": path, "before": before, "after": after}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    reports = [json.loads(Path(path).read_text()) for path in (args.before, args.after)]
    found = differences(*(report["datasets"] for report in reports))
    print_report({"before": args.before, "after": args.after,
                  "commits": [r.get("run", r["settings"]).get("git_commit") for r in reports],
                  "datasets": len(reports[0]["datasets"]), "same": not found,
                  "differences": found})


if __name__ == "__main__":
    main()

"""The README's quality table from ``quality_real.py`` JSON files (their datasets together, in
order): every dataset, the product against the forest, means and sd over stroke seeds, and
the commit that made each row. With ``--objects``, an ``object_rules.py`` JSON made on the
first run's saved predictions, the product's object F1 is that of its object step at the
commit of that file (same predictions, objects found again). Run:
``.venv/bin/python benchmarks/quality_table.py benchmarks/results/quality_real_all.json
[more.json ...] [--objects benchmarks/results/object_rules.json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cell(summary: dict, key: str) -> str:
    mean, sd = summary.get(key, [None, None])
    return "" if mean is None else f"{mean:.3f} ± {sd:.3f}"


def table(reports: list[dict], objects: dict | None = None) -> str:
    header = ("| data (kind) | product F1 | its mask's components F1 | forest F1 "
              "| product Dice | forest Dice | product mIoU | forest mIoU | commit |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    rows = {name: (result, report["settings"].get("git_commit", ""))
            for report in reports for name, result in report["datasets"].items()}
    rescored = (objects or {}).get("datasets", {})
    for name, (result, commit) in rows.items():
        product, forest = dict(result["summary"]["product"]), result["summary"]["forest"]
        if name in rescored:
            chosen = rescored[name]["chosen"]
            product["f1"] = [chosen["mean"], chosen["sd"]]
            commit = f"{commit}, objects {objects['settings']['git_commit']}"
        kind = result.get("kind", "instance")
        lines.append(f"| {name} ({kind}) | {cell(product, 'f1')} "
                     f"| {cell(product, 'components_f1')} | {cell(forest, 'f1')} "
                     f"| {cell(product, 'dice')} | {cell(forest, 'dice')} "
                     f"| {cell(product, 'miou')} | {cell(forest, 'miou')} | {commit} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--objects", type=Path, default=None)
    args = parser.parse_args()
    print(table([json.loads(path.read_text()) for path in args.reports],
                None if args.objects is None else json.loads(args.objects.read_text())))

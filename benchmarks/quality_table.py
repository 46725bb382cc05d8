"""The README's quality table from ``quality_real.py`` JSON files (their datasets together, in
order; each with the commit that made it): every dataset, the product against the forest,
means and sd over stroke seeds. Run:
``.venv/bin/python benchmarks/quality_table.py benchmarks/results/quality_real_all.json [...]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cell(summary: dict, key: str) -> str:
    mean, sd = summary.get(key, [None, None])
    return "" if mean is None else f"{mean:.3f} ± {sd:.3f}"


def table(reports: list[dict]) -> str:
    lines = ["| data (kind) | product F1 | its mask's components F1 | forest F1 "
             "| product Dice | forest Dice | product mIoU | forest mIoU | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = {name: (result, report["settings"].get("git_commit", ""))
            for report in reports for name, result in report["datasets"].items()}
    for name, (result, commit) in rows.items():
        product, forest = result["summary"]["product"], result["summary"]["forest"]
        kind = result.get("kind", "instance")
        lines.append(f"| {name} ({kind}) | {cell(product, 'f1')} "
                     f"| {cell(product, 'components_f1')} | {cell(forest, 'f1')} "
                     f"| {cell(product, 'dice')} | {cell(forest, 'dice')} "
                     f"| {cell(product, 'miou')} | {cell(forest, 'miou')} | {commit} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([json.loads(Path(path).read_text()) for path in sys.argv[1:]]))

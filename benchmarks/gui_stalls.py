"""What the GUI thread runs when it blocks the Qt event loop, from a py-spy trace of
``gui_latency.py``. Record (py-spy samples from outside, so a call that holds the GIL is
seen too), then read::

    pip install py-spy
    xvfb-run -a -s "-screen 0 1920x1200x24" py-spy record --idle -r 200 -f chrometrace \\
        -o trace.json -- .venv/bin/python benchmarks/gui_latency.py > latency.json
    .venv/bin/python benchmarks/gui_stalls.py trace.json [--min-ms 40]

The main thread is busy while its stack is deeper than the event loop's frame (``exec_``
in ``gui_latency.run_until``); a stretch of busy time longer than ``--min-ms`` is a stall.
Prints JSON: per benchmark phase, the stalls (start, length, the innermost frames of the
project and of napari / vispy / Qt), and the total stalled time per function.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json

from harness import print_report

LOOP_FRAME = "run_until"
PHASES = ("measure_training", "measure_busy_process", "main")
WATCHED = ("paintseg", "napari", "vispy", "superqt", "qtpy", "magicgui")


def main_thread_frames(events: list[dict]) -> list[dict]:
    """The events of the thread that runs ``run_until`` (the GUI thread)."""
    tid = next(e["tid"] for e in events if e["name"] == LOOP_FRAME)
    return [e for e in events if e["tid"] == tid]


def label(event: dict) -> str:
    path = event["args"].get("filename", "").split("site-packages/")[-1].split("src/")[-1]
    return f"{event['name']} ({path}:{event['args'].get('line')})"


def stalls(events: list[dict], min_ms: float) -> list[dict]:
    """Stretches where the stack is deeper than the event loop, longer than ``min_ms``, with
    the time (ms) spent in their innermost watched frames.

    py-spy writes a frame's B(egin) and E(nd) only when the sampled stack changes, so the
    stack after the events of one timestamp holds until the next timestamp.
    """
    stack: list[str] = []
    found, current = [], None
    for ts, group in itertools.groupby(events, key=lambda e: e["ts"]):
        if current is not None:
            current["frames"][current.pop("key")] += (ts - current["last"]) / 1000
        for event in group:
            if event["ph"] == "B":
                stack.append(label(event))
            else:
                stack.pop()
        base = next((i + 1 for i, f in enumerate(stack) if f.startswith(LOOP_FRAME + " ")),
                    None)
        busy = base is not None and len(stack) > base
        if busy:
            if current is None:
                phase = next((f.split(" ")[0] for f in reversed(stack[:base])
                              if f.split(" ")[0] in PHASES), "?")
                current = {"phase": phase, "start": ts, "frames": collections.Counter()}
            watched = [f for f in stack[base:] if any(w in f for w in WATCHED)]
            current["key"] = " < ".join(watched[-3:][::-1]) or stack[-1]
            current["last"] = ts
        elif current is not None:
            ms = (ts - current["start"]) / 1000
            if ms >= min_ms:
                found.append({"phase": current["phase"], "at_s": round(current["start"] / 1e6, 2),
                              "ms": round(ms, 1), "frames": {
                                  k: round(v, 1) for k, v in current["frames"].most_common(4)}})
            current = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", help="py-spy chrometrace JSON")
    parser.add_argument("--min-ms", type=float, default=40.0)
    args = parser.parse_args()
    with open(args.trace) as file:
        events = main_thread_frames(json.load(file))
    found = stalls(events, args.min_ms)
    by_function: collections.Counter = collections.Counter()
    for stall in found:
        by_function.update(stall["frames"])
    print_report({"stalls": found, "ms_by_innermost_frames": {
        name: round(ms, 1) for name, ms in by_function.most_common(15)}}, indent=1)


if __name__ == "__main__":
    main()

"""``python -m prisma_widgets.hooked.coverage [--source timm open_clip transformers] [--match GLOB] [--docs]``"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import os
import sys

from . import catalog, report
from .checks import check

DEFAULT_RESULTS = os.path.join("build", "model_coverage.jsonl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prisma_widgets.hooked.coverage", description=__doc__)
    parser.add_argument("--source", nargs="*", default=["timm", "open_clip", "transformers"],
                        help="which libraries to sweep")
    parser.add_argument("--match", default="*", help="only architectures whose name matches this glob")
    parser.add_argument("--results", default=DEFAULT_RESULTS, help="the JSON-lines file the records go to")
    parser.add_argument("--redo", action="store_true", help="check again what the results file already holds")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the sweep is many small runs)")
    parser.add_argument("--docs", nargs="?", const=report.DOCS_PAGE, default=None,
                        help=f"write the table (default {report.DOCS_PAGE}) from the results, after the sweep")
    parser.add_argument("--baseline", default=None, help="results of an older checkout, for before / after counts")
    parser.add_argument("--no-run", action="store_true", help="only write the table from existing results")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if not args.no_run:
        done = set() if args.redo else set(report.load(args.results))
        builders = {"timm": catalog.timm_entries, "open_clip": catalog.open_clip_entries,
                    "transformers": catalog.hf_entries}
        os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
        for source in args.source:
            for entry in builders[source]():
                if (entry.source, entry.name) in done or not fnmatch.fnmatch(entry.name, args.match):
                    continue
                record = check(entry)
                with open(args.results, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                print(f"{record['status']:8s} {record['seconds']:7.1f}s {entry.source}:{entry.name} "
                      f"{record.get('reason', '')[:100]}", flush=True)
                gc.collect()
    results = report.load(args.results)
    print(report.summary(results, report.load(args.baseline) if args.baseline else None))
    if args.docs:
        report.write(args.docs, results, report.load(args.baseline) if args.baseline else None)
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

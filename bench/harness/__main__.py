"""``bench/run [--quick] [--only NAME...] [--results DIR] [--page FILE]``: run benchmarks, write the page."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import page
from .runner import REPO, append, run_invocation
from .specs import BY_NAME, SPECS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes; the whole run takes < 5 min")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(BY_NAME), help="run only these")
    parser.add_argument("--skip", nargs="+", metavar="NAME", choices=sorted(BY_NAME), default=[])
    parser.add_argument(
        "--results", type=Path, default=REPO / "bench" / "results", help="where the .jsonl go"
    )
    parser.add_argument(
        "--page",
        type=Path,
        default=None,
        help="default: docs/performance.md (or DIR/performance.md with --results)",
    )
    parser.add_argument("--page-only", action="store_true", help="regenerate the page from existing results")
    args = parser.parse_args(argv)
    results = args.results.resolve()
    default_results = results == (REPO / "bench" / "results").resolve()
    target = args.page or (
        REPO / "docs" / "performance.md" if default_results else results / "performance.md"
    )
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    failed = []
    if not args.page_only:
        for spec in SPECS:
            if (args.only and spec.name not in args.only) or spec.name in args.skip:
                continue
            print(f"== {spec.name}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
            for invocation in spec.quick if args.quick else spec.full:
                lines = run_invocation(spec, invocation, quick=args.quick, run_id=run_id)
                path = append(results, spec.name, lines)
                errors = [x for x in lines if "error" in x]
                if errors:
                    # A run that failed as a whole has one line with its stderr; a line of a run that
                    # went on (a failed round) carries its own error.
                    failed.append(spec.name)
                    tail = errors[0].get("stderr_tail", "")
                    print(f"   {spec.name} failed: {errors[0]['error']}\n{tail}", file=sys.stderr)
                print(f"   {len(lines)} line(s) → {path}", file=sys.stderr, flush=True)
    page.render(results, target)
    print(f"page → {target}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

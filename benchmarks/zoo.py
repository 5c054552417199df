"""The zoo: induced-pathology runs and healthy controls, diagnosed by actscope and scored.

Every case (benchmarks/zoo_cases/) trains a small model with a plain loop under
``actscope.watch()``, measures its own pathology with plain torch hooks (the ground truth, shown
in the table) and is scored against what ``actscope.diagnose`` says (docs/zoo.md):
a pathology is NAMED when a finding of an expected kind names an expected layer; any finding on
a healthy control is a FALSE ALARM; a suggestion that contradicts the run's setup is WRONG ADVICE.
Ends with one line: ``named=<n>/<m> false_alarms=<k> wrong_advice=<j> seconds=<t>``.
Exit status 1 when a case's ground truth did not hold (the case proves nothing then).

    python benchmarks/zoo.py [--only name,name] [--list] [--fast] [--findings] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# The repository root, not this folder, goes on sys.path: this folder holds transformers.py and
# lightning.py, which would shadow those packages.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from benchmarks.zoo_cases import CASES, by_name, run_case, score  # noqa: E402
from benchmarks.zoo_cases.score import score_case  # noqa: E402


def _expected(case) -> str:
    if case.control:
        return "(healthy)"
    where = "any layer" if case.layers is None else ",".join(case.layers)
    return f"{'|'.join(sorted(case.expected))} @ {where}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--fast", action="store_true", help="only the quick subset run by make test")
    ap.add_argument("--findings", action="store_true", help="print every finding")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: the models are tiny)")
    args = ap.parse_args(argv)
    try:
        cases = by_name(args.only.split(",")) if args.only else CASES
    except KeyError as e:
        ap.error(e.args[0])  # exit 2 with the message
    cases = [c for c in cases if c.fast] if args.fast else cases
    if args.list:
        for c in cases:
            print(f"{c.name:26s} {c.category:12s} {_expected(c):60s} {c.mechanism}")
        return 0
    torch.set_num_threads(args.threads)
    t0, results, invalid = time.perf_counter(), [], 0
    print(f"{'case':26s} {'category':11s} {'expected':44s} {'got':34s} {'time':>6s}  truth")
    for case in cases:
        r = run_case(case)
        results.append((case, r.findings))
        s = score_case(case, r.findings)
        mark = "" if s.named is None else (" NAMED" if s.named else " missed")
        got = ",".join(sorted({f.kind for f in r.findings})) or "-"
        truth = ("" if r.truth.holds else "INVALID (ground truth does not hold) ") + str(r.truth)
        invalid += not r.truth.holds
        print(f"{case.name:26s} {case.category:11s} {_expected(case)[:44]:44s} "
              f"{(got + mark)[:34]:34s} {r.seconds:5.1f}s  {truth}")
        for w in s.wrong_advice:
            print(f"    wrong advice: {w}")
        if s.false_alarms:
            print(f"    false alarm: {', '.join(f'{f.kind} @ {f.layer}' for f in r.findings)}")
        if args.findings:
            for f in r.findings:
                print(f"    - [{f.kind} @ {f.layer}] {f}")
    print(f"{score(results).line()} seconds={time.perf_counter() - t0:.0f}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())

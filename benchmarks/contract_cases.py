"""Run the tool-contract cases of ``tests/test_contract.py`` against a cityos command and print
how each ends, for before/after tables: ``refused`` (exit 2, one error line, files intact),
``warned`` (success with the expected warning), ``traceback``, ``destroyed`` (a file that was
there changed or vanished), ``partial`` (new or temporary files after a refusal), ``silent``
(accepted without a word) or ``other``; ``refused, unclear`` when the one line does not say
what the case expects (the wrong file or option blamed, no fix given).

    python benchmarks/contract_cases.py                      # this checkout
    python benchmarks/contract_cases.py --src /tmp/old/src   # an older checkout's sources
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_contract import CASES, snapshot  # noqa: E402


def _run(src: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import sys; from cityos.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def outcome(case: object, proc: subprocess.CompletedProcess[str], before: dict[str, str],
            after: dict[str, str]) -> str:  # fmt: skip
    err = proc.stderr
    if "Traceback" in err:
        return "traceback"
    if any(after.get(k) != v for k, v in before.items()):
        return "destroyed"
    errors = [x for x in err.splitlines() if x.startswith("cityos: error:")]
    new = set(after) - set(before)
    if proc.returncode == 2 and len(errors) == 1:
        if new:
            return "partial"
        return "refused" if getattr(case, "message", "") in errors[0] else "refused, unclear"
    if proc.returncode == 0:
        expected = getattr(case, "message", "")
        if any(expected in x for x in err.splitlines() if x.startswith("cityos: warning:")):
            return "warned"
        return "silent"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=REPO / "src")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "made"
        made.mkdir()
        for args in (["import", "--demo", "helsinki", "--out", "hel", "-q"],
                     ["checkup", "hel", "--out", "res", "-q"]):  # fmt: skip
            assert _run(REPO / "src", args, made).returncode == 0
        tally: Counter[str] = Counter()
        for case in CASES:
            w = Path(tmp) / case.id
            shutil.copytree(made, w)
            if case.prep is not None:
                case.prep(w)
            before = snapshot(w)
            proc = _run(opts.src, [a.replace("{w}", str(w)) for a in case.args], w)
            result = outcome(case, proc, before, snapshot(w))
            tally[result] += 1
            print(f"{case.id:<32} exit {proc.returncode:>3}  {result}")
        print(", ".join(f"{n} {k}" for k, n in tally.most_common()), f"({len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

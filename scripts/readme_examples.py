"""The console examples of README.md, generated from this checkout so that they cannot go stale.

Each block between ``<!-- example: NAME -->`` and ``<!-- /example -->`` in README.md is a
command and what it prints on stdout, run here with ``python -m study``. What differs from one
run to the next is written the same way every time: the temporary working directory of
``study run`` as ``…`` and its seconds and trials per second as ``…``.

    python scripts/readme_examples.py                 # rewrite every block
    python scripts/readme_examples.py --check         # exit 1 naming each stale block
    python scripts/readme_examples.py --only fit iterations   # skip the sweep (about 30 s)

The article's data is read from ``$STUDY_NEDRICH_CSV`` or ``../shared/data/nedrich/data.csv``
(as the tests read it) and shown as ``../shared/data/nedrich/data.csv``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHOWN_DATA = "../shared/data/nedrich/data.csv"  # the path relative to a checkout at /work/<x>


@dataclass(frozen=True)
class Example:
    command: str  # as the README shows it, starting with "study"
    in_temp_dir: bool = False  # run in a fresh working directory (a sweep writes its stores)


EXAMPLES = {
    "run": Example("study run configs/quickstart.yaml", in_temp_dir=True),
    "iterations": Example(f"study iterations --data {SHOWN_DATA}"),
    "fit": Example(f"study fit --data {SHOWN_DATA} --lr 1e-4 --epochs 1000"),
}
FAST = ("iterations", "fit")  # the examples that run in seconds (no sweep)


def article_data() -> Path:
    """Where the article's data is on this machine (as tests/conftest.py finds it)."""
    return Path(os.environ.get("STUDY_NEDRICH_CSV",
                               ROOT.parent / "shared" / "data" / "nedrich" / "data.csv"))


def normalise(text: str, workdir: str | None) -> str:
    """The same text on every run: the data's real path as the README shows it, the
    temporary working directory as ``…``, seconds and rates as ``…``."""
    text = text.replace(str(article_data()), SHOWN_DATA)
    if workdir is not None:
        text = text.replace(workdir, "…")
    return re.sub(r"in [\d.]+ s, [\d.]+ trials/s", "in … s, … trials/s", text)


def run(example: Example) -> str:
    """The example's stdout, normalised."""
    argv = [str(article_data()) if a == SHOWN_DATA else a
            for a in shlex.split(example.command)[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="readme-") as tmp:
        workdir = str(Path(tmp).resolve()) if example.in_temp_dir else None
        if workdir is not None:
            argv = [str(ROOT / a) if a.startswith("configs/") else a for a in argv]
            argv.append("--no-progress")  # the bar goes to stderr; it is not shown
        done = subprocess.run([sys.executable, "-m", "study", *argv], cwd=workdir or ROOT,
                              env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{example.command} exited {done.returncode}: {done.stderr[-2000:]}")
    return normalise(done.stdout, workdir)


def block(name: str, output: str) -> str:
    """The README's block: markers, a console fence, the command and its output."""
    return (f"<!-- example: {name} -->\n```console\n$ {EXAMPLES[name].command}\n"
            f"{output.rstrip()}\n```\n<!-- /example -->")


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- example: {re.escape(name)} -->\n.*?<!-- /example -->", re.DOTALL)


def update(text: str, outputs: dict[str, str]) -> str:
    """``text`` with each named block replaced by its output; a missing marker is an error."""
    for name, output in outputs.items():
        if not _pattern(name).search(text):
            raise KeyError(f"README.md has no '<!-- example: {name} -->' block")
        text = _pattern(name).sub(lambda _m, n=name, o=output: block(n, o), text)
    return text


def stale(text: str, outputs: dict[str, str]) -> list[str]:
    """The names whose block in ``text`` differs from what the command prints now."""
    return [name for name, output in outputs.items()
            if update(text, {name: output}) != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when a block is out of date")
    parser.add_argument("--only", nargs="+", choices=sorted(EXAMPLES), metavar="NAME",
                        help=f"only these blocks ({', '.join(EXAMPLES)})")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    outputs = {name: run(EXAMPLES[name]) for name in args.only or EXAMPLES}
    text = args.readme.read_text(encoding="utf-8")
    if args.check:
        old = stale(text, outputs)
        for name in old:
            print(f"{args.readme}: the '{name}' example is out of date; run "
                  "python scripts/readme_examples.py", file=sys.stderr)
        return 1 if old else 0
    new = update(text, outputs)
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: rewrote {', '.join(stale(text, outputs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

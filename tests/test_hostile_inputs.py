"""Hostile inputs through the whole command: each is one line on stderr, exit code 2, at once,
and nothing is created beside the config."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from study.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _deep(depth: int) -> str:
    return "name: t\nsearch: " + "[" * depth + "]" * depth + "\n"


def _bomb(levels: int = 10) -> str:
    lines = ["name: t", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    (_deep(600), "nested deeper than 64 levels"),
    (_bomb(), "aliases expand the document past 100,000 values"),
], ids=["nested-600-deep", "alias-bomb"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_yaml_without_limits_is_one_line_at_once(tmp_path, monkeypatch, capsys, text, message,
                                                 command):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    code = main([command, str(path)])
    took = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 2 and took < 5
    assert err.count("\n") == 1 and err.startswith(f"study: error: {path}:") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("where", ["taken", "taken/report"])
def test_a_report_folder_that_cannot_be_made_is_refused_before_the_sweep(tmp_path, monkeypatch,
                                                                         capsys, command, where):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("a file where the report's folder should be\n")
    config = ROOT / "configs" / "quickstart.yaml"
    code = main([command, str(config), "--set", f"report.dir={where}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"study: error: cannot write the report to {tmp_path / where}: "
                          f"{tmp_path / 'taken'} is not a folder (report.dir)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no store was created


@pytest.fixture
def special_files(tmp_path):
    """A device that never ends, a pipe nobody writes to, and a folder: none is a CSV file."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    return {"/dev/zero": "not a regular file", str(fifo): "not a regular file",
            str(folder): "a folder"}


def test_devices_pipes_and_folders_are_refused_by_name_at_once(tmp_path, monkeypatch, capsys,
                                                               special_files):
    monkeypatch.chdir(tmp_path)
    config = ROOT / "configs" / "quickstart.yaml"
    for path, what in special_files.items():
        started = time.perf_counter()
        assert main(["fit", "--data", path]) == 2
        assert capsys.readouterr().err == f"study: error: {path}: {what}, not a CSV file\n"
        assert main(["validate", str(config), "--set", f"data.path={path}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"data.path must name a CSV file; got {path!r}" in err
        assert f"is {what}" in err and time.perf_counter() - started < 5


def test_a_figure_in_a_missing_folder_is_refused_before_any_work_and_makes_no_folder(
        tmp_path, capsys):
    target = tmp_path / "no" / "such" / "f.png"
    data = ROOT / "data" / "blog_like.csv"
    assert main(["iterations", "--data", str(data), "--figure", str(target)]) == 2
    assert capsys.readouterr().err == (f"study: error: --figure {target}: the folder "
                                       f"{target.parent} does not exist\n")
    assert not (tmp_path / "no").exists()


def test_a_data_file_past_the_size_limit_is_one_line_before_it_is_read(tmp_path, capsys):
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk is used, but reading it would take 300 MiB
    started = time.perf_counter()
    assert main(["fit", "--data", str(big)]) == 2
    assert capsys.readouterr().err == (
        f"study: error: {big}: 300 MiB is past the limit of 256 MiB for a data file (about 10 "
        "million rows of two numbers); sample or aggregate the rows first\n")
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("args", [["fit"], ["fit", "--json"], ["iterations"]],
                         ids=["fit", "fit-json", "iterations"])
def test_a_reader_that_goes_away_is_no_error(tmp_path, args):
    # `study … | head`: the pipe is closed before the command writes
    import subprocess
    import sys

    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{x},{2 * x + 1 + (x % 3) / 10}\n" for x in range(20)))
    proc = subprocess.Popen([sys.executable, "-m", "study", *args[:1], "--data", str(data),
                             *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == "", err


def test_a_ctrl_c_that_python_wrapped_is_still_an_interrupt(monkeypatch, capsys):
    """A KeyboardInterrupt raised while a class is created reaches the command as a RuntimeError
    caused by it (Python wraps errors of ``__set_name__``; seen when a Ctrl-C lands while numba
    is imported): exit 130 "interrupted", as for a plain Ctrl-C, not a traceback."""
    from study import cli

    class Interrupting:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    def command(args):
        type("Imported", (), {"attr": Interrupting()})  # as a module's class statement would
        return 0

    with pytest.raises(RuntimeError) as wrapped:
        command(None)
    assert isinstance(wrapped.value.__cause__, KeyboardInterrupt)
    monkeypatch.setitem(cli.COMMANDS, "fit", (cli.COMMANDS["fit"][0], command))
    assert main(["fit", "--data", "x.csv"]) == 130
    assert capsys.readouterr().err == "study: interrupted\n"


def test_a_ctrl_c_that_python_swallowed_is_delivered_again(monkeypatch, capsys):
    """A KeyboardInterrupt raised where Python cannot raise it (here a finalizer; in real runs a
    weakref callback of the import system) is only printed as "Exception ignored" and the
    command would go on; the command delivers it again and ends 130 "interrupted"."""
    from study import cli

    class Finalized:
        def __del__(self):
            raise KeyboardInterrupt

    def command(args):
        Finalized()  # dropped at once: its __del__ raises where nothing can catch it
        for _ in range(100):  # the rest of a command that would finish if the Ctrl-C were lost
            time.sleep(0.1)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "fit", (cli.COMMANDS["fit"][0], command))
    start = time.monotonic()
    assert main(["fit", "--data", "x.csv"]) == 130
    assert time.monotonic() - start < 5
    captured = capsys.readouterr().err
    assert captured == "study: interrupted\n", captured
    assert sys.unraisablehook is not None and "cli" not in getattr(
        sys.unraisablehook, "__qualname__", "")  # the hook is the command's only while it runs

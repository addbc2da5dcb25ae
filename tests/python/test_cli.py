"""The nndex command line: build, search, info, errors, and the subcommand plugin hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from nndex import NNdex, cli
from oracle_helpers import make_data, make_queries

ROWS, DIMS = 400, 12
DATA = make_data(ROWS, DIMS)
QUERIES = make_queries(6, DIMS, salt=1)


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "data.npy", DATA)
    np.save(tmp_path / "queries.npy", QUERIES)
    return tmp_path


def run_main(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nndex: error: "), err
    assert lines[0].count("nndex: ") == 1, err  # one program name, however deep the message came from
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# In-process
# ------------------------------------------------------------------------------------------------


def test_build_info_search_every_output_format(files, capsys):
    index_path = files / "i.nndex"
    status, out, err = run_main(["build", files / "data.npy", "-o", index_path], capsys)
    assert status == 0 and out == ""
    assert "built an exact index of 400 x 12" in err
    expected = NNdex(DATA).search(QUERIES, k=5)

    status, out, err = run_main(["search", index_path, files / "queries.npy", "-k", 5, "-o", files / "r.npz", "-q"], capsys)
    assert (status, out, err) == (0, "", "")
    with np.load(files / "r.npz") as z:
        assert sorted(z.files) == ["indices", "similarities"]
        np.testing.assert_array_equal(z["indices"], expected[0])
        np.testing.assert_array_equal(z["similarities"], expected[1])

    assert run_main(["search", index_path, files / "queries.npy", "-k", 5, "-o", files / "r.npy", "-q"], capsys)[0] == 0
    table = np.load(files / "r.npy")
    assert table.dtype.names == ("index", "similarity") and table.shape == (6, 5)
    np.testing.assert_array_equal(table["index"], expected[0])
    np.testing.assert_array_equal(table["similarity"], expected[1])

    assert run_main(["search", index_path, files / "queries.npy", "-k", 5, "-o", files / "r.csv", "-q"], capsys)[0] == 0
    lines = (files / "r.csv").read_text().splitlines()
    assert lines[0] == "query,rank,index,similarity"
    assert len(lines) == 1 + 6 * 5
    rows = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
    np.testing.assert_array_equal(rows[:, 0], np.repeat(np.arange(6), 5))
    np.testing.assert_array_equal(rows[:, 1], np.tile(np.arange(1, 6), 6))
    np.testing.assert_array_equal(rows[:, 2].reshape(6, 5), expected[0])
    np.testing.assert_array_equal(rows[:, 3].reshape(6, 5).astype(np.float32), expected[1])  # round-trips float32

    status, out, err = run_main(["search", index_path, files / "queries.npy", "-k", 5], capsys)
    assert status == 0 and out.splitlines() == lines  # no -o: CSV on stdout

    pq = pytest.importorskip("pyarrow.parquet")
    assert run_main(["search", index_path, files / "queries.npy", "-k", 5, "-o", files / "r.parquet"], capsys)[0] == 0
    t = pq.read_table(files / "r.parquet")
    assert t.column_names == ["query", "indices", "similarities"]
    np.testing.assert_array_equal(np.array(t.column("indices").to_pylist()), expected[0])
    np.testing.assert_array_equal(np.array(t.column("similarities").to_pylist(), dtype=np.float32), expected[1])

    status, out, err = run_main(["info", index_path, "--json"], capsys)
    facts = json.loads(out)
    assert facts["rows"] == ROWS and facts["dims"] == DIMS and facts["approx"] is False
    assert facts["file_bytes"] == os.path.getsize(index_path)
    # info maps the file: anonymous memory only, so next to nothing (the pages belong to the file).
    assert facts["memory_bytes"] == NNdex.load(index_path, mmap=True).memory_bytes < facts["file_bytes"]
    assert facts["storage"] == "f32"
    assert (facts["segments"], facts["removed_rows"], facts["next_id"]) == (1, 0, ROWS)
    status, out, err = run_main(["info", index_path], capsys)
    assert status == 0 and "rows" in out and "file_bytes" in out and "nprobe" in out


def test_build_options(files, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"id": np.arange(ROWS), "emb": pa.FixedSizeListArray.from_arrays(pa.array(DATA.reshape(-1)), DIMS)})
    pq.write_table(table, files / "data.parquet")
    out_path = files / "a.nndex"
    status, _, err = run_main(
        ["build", files / "data.parquet", "--key", "emb", "-o", out_path, "--approx", "--nlist", 6, "--nprobe", 2,
         "--seed", 3, "--threads", 1, "--normalized"],
        capsys,
    )
    assert status == 0, err
    assert "nlist=6, nprobe=2" in err
    index = NNdex.load(out_path)
    assert (index.approx, index.nlist, index.nprobe, index.normalized) == (True, 6, 2, True)
    expected = NNdex(DATA, normalized=True, approx=True, nlist=6, nprobe=2, seed=3).search(QUERIES, k=4)
    for got, want in zip(index.search(QUERIES, k=4), expected):
        np.testing.assert_array_equal(got, want)
    status, out, err = run_main(["search", out_path, files / "queries.npy", "-k", 4, "--nprobe", 6, "-q"], capsys)
    assert status == 0 and len(out.splitlines()) == 1 + 6 * 4


def test_build_and_search_a_graph(files, capsys):
    out_path = files / "g.nndex"
    status, _, err = run_main(["build", files / "data.npy", "-o", out_path, "--approx", "graph", "--ef", 20], capsys)
    assert status == 0, err
    assert "graph index (ef=20)" in err
    index = NNdex.load(out_path)
    assert (index.method, index.ef) == ("graph", 20)
    status, out, err = run_main(["search", out_path, files / "queries.npy", "-k", 4, "--ef", 40, "-q"], capsys)
    assert status == 0 and len(out.splitlines()) == 1 + 6 * 4
    status, out, _ = run_main(["info", out_path, "--json"], capsys)
    assert status == 0 and '"method": "graph"' in out
    with pytest.raises(SystemExit) as exc:  # argparse refuses an unknown method
        run_main(["build", files / "data.npy", "-o", out_path, "--approx", "hnsw"], capsys)
    assert exc.value.code == 2 and "invalid choice: 'hnsw'" in capsys.readouterr().err


def test_quiet_build_prints_nothing(files, capsys):
    assert run_main(["build", files / "data.npy", "-o", files / "i.nndex", "--quiet"], capsys) == (0, "", "")


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (["build", "{f}/missing.npy", "-o", "{f}/i.nndex"], r"missing\.npy'?: No such file"),
        (["build", "{f}/data.txt", "-o", "{f}/i.nndex"], r"unsupported file extension"),
        (["build", "{f}/data.npy", "-o", "{f}/i.nndex", "--nlist", "3"], r"need --approx"),
        (["build", "{f}/data.npy", "-o", "{f}/i.nndex", "--approx", "--recall", "2"], r"recall must be in"),
        (["build", "{f}/data.npy", "-o", "{f}/no/such/dir/i.nndex"], r"No such file|cannot"),
        (["build", "{f}/nan.npy", "-o", "{f}/i.nndex"], r"nan\.npy.*row 3"),
        (["search", "{f}/data.npy", "{f}/queries.npy", "-k", "3"], r"wrong magic"),
        (["search", "{f}/i.nndex", "{f}/queries.npy", "-k", "0"], r"-k must be at least 1"),
        (["search", "{f}/i.nndex", "{f}/queries.npy", "-o", "{f}/r.txt"], r"unsupported output extension '\.txt'"),
        (["search", "{f}/i.nndex", "{f}/wide.npy"], r"wide\.npy.*13 dims but the index has 12"),
        (["search", "{f}/i.nndex", "{f}/queries.npy", "--key", "x"], r"key"),
        (["info", "{f}/missing.nndex"], r"missing\.nndex'?: No such file"),
        (["info", "{f}/queries.npy"], r"not an nndex index"),
    ],
    ids=["missing-data", "bad-ext", "nlist-without-approx", "bad-recall", "bad-output-dir", "nan-data", "not-an-index",
         "k-zero", "bad-output-ext", "dims-mismatch", "key-on-npy", "info-missing", "info-not-index"],
)
def test_errors_are_one_line_with_status_1(files, capsys, argv, pattern):
    import re

    np.save(files / "nan.npy", np.where(np.arange(ROWS)[:, None] == 3, np.nan, DATA).astype(np.float32))
    np.save(files / "wide.npy", make_queries(2, DIMS + 1))
    assert run_main(["build", files / "data.npy", "-o", files / "i.nndex", "-q"], capsys)[0] == 0
    status, out, err = run_main([a.format(f=files) for a in argv], capsys)
    assert status == 1
    line = _one_error_line(err)
    assert re.search(pattern, line), line
    assert not (files / "r.txt").exists()


@pytest.mark.parametrize(
    "argv, path",
    [
        (["build", "{f}/data.npy", "-o", "{f}/no/dir/i.nndex"], "{f}/no/dir/i.nndex"),
        (["info", "{f}/missing.nndex"], "{f}/missing.nndex"),
        (["search", "{f}/missing.nndex", "{f}/queries.npy"], "{f}/missing.nndex"),
        (["build", "{f}/missing.npy", "-o", "{f}/i.nndex"], "{f}/missing.npy"),
    ],
    ids=["save", "info", "search", "build-input"],
)
def test_file_errors_name_the_program_and_the_file_once(files, capsys, argv, path):
    status, _, err = run_main([a.format(f=files) for a in argv], capsys)
    line = _one_error_line(err)
    assert status == 1 and line.count(path.format(f=files)) == 1, line
    assert "No such file or directory" in line


def test_native_program_prefix_is_dropped(files, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("nndex: index file 'x': checksum mismatch")

    monkeypatch.setattr(NNdex, "load", fail)
    status, _, err = run_main(["info", files / "data.npy"], capsys)
    assert status == 1 and _one_error_line(err) == "nndex: error: index file 'x': checksum mismatch"


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["bogus"], ["build"], ["search", "x"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    capsys.readouterr()


def test_failed_output_leaves_no_partial_file(files, capsys, monkeypatch):
    assert run_main(["build", files / "data.npy", "-o", files / "i.nndex", "-q"], capsys)[0] == 0

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    status, _, err = run_main(["search", files / "i.nndex", files / "queries.npy", "-o", files / "r.npz"], capsys)
    assert status == 1 and "No space left" in _one_error_line(err)
    assert [p.name for p in files.iterdir() if p.name.startswith(".nndex-") or p.name == "r.npz"] == []


# ------------------------------------------------------------------------------------------------
# Plugins
# ------------------------------------------------------------------------------------------------


def _fake_plugin(name="hello"):
    module = types.ModuleType("fake_nndex_plugin")

    def register(subparsers):
        p = cli.add_command(subparsers, name, lambda args: print(f"hello {args.who}") or 3, "say hello")
        p.add_argument("who")

    module.register = register
    return module


def test_plugin_modules_are_registered(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fake_nndex_plugin", _fake_plugin())
    monkeypatch.setattr(cli, "PLUGINS", {"hello": "fake_nndex_plugin"})
    assert run_main(["hello", "world"], capsys)[:2] == (3, "hello world\n")
    assert "hello" in cli.build_parser().format_help()


def test_missing_plugin_is_skipped(monkeypatch, capsys):
    monkeypatch.setattr(cli, "PLUGINS", {"code": "nndex.no_such_package.cli"})
    assert _commands(cli.build_parser()) == ["build", "search", "info"]
    with pytest.raises(SystemExit) as info:
        cli.main(["code"])
    assert info.value.code == 2  # an unknown command, as if the plugin had never existed
    capsys.readouterr()


def _commands(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_broken_plugin_becomes_a_one_line_error(monkeypatch, capsys):
    broken = types.ModuleType("broken_plugin")

    def register(subparsers):
        raise RuntimeError("tree-sitter grammar missing")

    broken.register = register
    monkeypatch.setitem(sys.modules, "broken_plugin", broken)
    monkeypatch.setattr(cli, "PLUGINS", {"code": "broken_plugin", "other": "nndex._missing_dependency_test"})
    monkeypatch.setattr(cli.importlib, "import_module", _importer_failing_on("nndex._missing_dependency_test"))
    status, _, err = run_main(["code", "search", "--flag", "x"], capsys)
    assert status == 1
    assert "'nndex code' is unavailable" in _one_error_line(err) and "tree-sitter" in err
    status, _, err = run_main(["other"], capsys)
    assert status == 1 and "No module named 'some_dependency'" in _one_error_line(err)
    # The built-in commands still work.
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    capsys.readouterr()


def _importer_failing_on(name):
    import importlib

    real = importlib.import_module

    def fake(module_name, *args):
        if module_name == name:
            raise ModuleNotFoundError("No module named 'some_dependency'", name="some_dependency")
        return real(module_name, *args)

    return fake


def test_extra_registrars(capsys):
    status = cli.main(["hi", "you"], extra=[_fake_plugin("hi").register])
    assert status == 3 and capsys.readouterr().out == "hello you\n"


# ------------------------------------------------------------------------------------------------
# Subprocesses: the console script and python -m nndex
# ------------------------------------------------------------------------------------------------


def _script():
    folder = os.path.dirname(sys.executable)
    path = shutil.which("nndex", path=folder)
    return [path] if path else None


def test_console_script_end_to_end(files, child_env):
    script = _script()
    if script is None:
        pytest.skip("the nndex console script is not installed next to this Python")
    index_path = files / "i.nndex"
    done = subprocess.run(script + ["build", str(files / "data.npy"), "-o", str(index_path)],
                          env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "built an exact index" in done.stderr and done.stdout == ""
    done = subprocess.run(script + ["search", str(index_path), str(files / "queries.npy"), "-k", "2"],
                          env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("query,rank,index,similarity\n0,1,")
    done = subprocess.run(script + ["info", str(files / "nope.nndex")],
                          env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("nndex: error:") and len(done.stderr.strip().splitlines()) == 1


def test_python_dash_m(files, child_env):
    done = subprocess.run([sys.executable, "-m", "nndex", "--version"], env=child_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("nndex ")
    done = subprocess.run([sys.executable, "-m", "nndex", "build", str(files / "queries.npy"), "-o",
                           str(files / "bad" / "x.nndex")], env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "nndex", "frobnicate"], env=child_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2

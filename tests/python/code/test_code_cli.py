"""The `nndex code` command line, run as `python -m nndex.code` in subprocesses with the fake HTTP
embedding server; plus its registration into an outer argparse parser."""

from __future__ import annotations

import argparse
import json
import re

import pytest

pytest.importorskip("pathspec")

RESULT_LINE = re.compile(r"^(?P<file>\S+):(?P<start>\d+)-(?P<end>\d+)  \(sim=(?P<sim>-?\d\.\d{3})\)$")


def one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("nndex: error: ")
    return lines[0]


def test_search_without_index_is_one_line_and_status_1(run_cli, tmp_path):
    proc = run_cli("search", "where is the config parsed", "-d", tmp_path)
    assert proc.returncode == 1
    assert "nndex code embed" in one_error_line(proc)
    assert proc.stdout == ""
    proc = run_cli("info", tmp_path)
    assert proc.returncode == 1 and "nndex code embed" in one_error_line(proc)


def test_embed_search_info_with_an_http_server(run_cli, code_tree, embed_server):
    proc = run_cli("embed", code_tree, "--api-url", embed_server.url, "--model", "fake-model")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^files:\s+12 \(12 embedded, 0 unchanged, 0 removed\)$", proc.stdout, re.M), proc.stdout
    m = re.search(r"^chunks: (\d+) \(\1 embedded, 256 dims, model fake-model\)$", proc.stdout, re.M)
    assert m, proc.stdout
    chunks = int(m.group(1))
    assert re.search(r"^speed:\s+[\d.]+ chunks/s", proc.stdout, re.M)
    assert re.search(r"^time:\s+[\d.]+ s", proc.stdout, re.M)
    assert embed_server.inputs == chunks
    assert "Traceback" not in proc.stderr

    proc = run_cli("search", "remove", "an", "item", "from", "the", "shopping", "cart", "-d", code_tree, "-k", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").split("\n")
    assert len(lines) == 6  # three results, each with a preview line
    first = RESULT_LINE.match(lines[0])
    assert first, lines[0]
    assert first.group("file").endswith("web/cart.js")
    assert lines[1].startswith("    ") and lines[1].strip()
    sims = [float(RESULT_LINE.match(line).group("sim")) for line in lines[0::2]]
    assert sims == sorted(sims, reverse=True)

    proc = run_cli("search", "verify password hash", "-d", code_tree, "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["query"] == "verify password hash" and out["model"] == "fake-model"
    assert len(out["results"]) == 2
    top = out["results"][0]
    assert top["file"] == "web/auth.ts" and top["rank"] == 1
    assert set(top) >= {"file", "path", "start_line", "end_line", "similarity", "preview", "name", "kind"}
    assert 1 <= top["start_line"] <= top["end_line"]

    proc = run_cli("info", code_tree)
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^vectors:\s+{chunks}$", proc.stdout, re.M)
    assert re.search(r"^dimensions:\s+256$", proc.stdout, re.M)
    assert re.search(r"^model:\s+fake-model \(http, http://127\.0\.0\.1:\d+\)$", proc.stdout, re.M)
    assert re.search(r"^files:\s+12$", proc.stdout, re.M)
    assert re.search(r"^built:\s+\d{4}-\d\d-\d\dT", proc.stdout, re.M)
    info = json.loads(run_cli("info", code_tree, "--json").stdout)
    assert info["vectors"] == chunks and info["dimensions"] == 256 and info["model"] == "fake-model"

    # a second embed finds nothing to do and never calls the server
    embed_server.reset()
    proc = run_cli("embed", code_tree, "--api-url", embed_server.url, "--model", "fake-model", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("index is up to date") and embed_server.requests == []


def test_embed_reads_the_server_from_the_environment(run_cli, code_tree, embed_server):
    env = {"NNDEX_EMBED_API_URL": embed_server.url, "NNDEX_EMBED_MODEL": "env-model"}
    proc = run_cli("embed", code_tree, "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert embed_server.requests[0]["body"]["model"] == "env-model"
    proc = run_cli("search", "shutdown the http server on an interrupt signal", "-d", code_tree, "-k", "1")
    assert proc.returncode == 0, proc.stderr
    assert RESULT_LINE.match(proc.stdout.split("\n")[0]).group("file").endswith("server/main.go")


def test_unreachable_server_is_one_line(run_cli, code_tree, closed_port_url):
    proc = run_cli("embed", code_tree, "--api-url", closed_port_url, "--quiet")
    assert proc.returncode == 1
    assert "cannot reach embedding server" in one_error_line(proc)


def test_broken_server_is_one_line(run_cli, code_tree, embed_server):
    embed_server.mode = "badjson"
    proc = run_cli("embed", code_tree, "--api-url", embed_server.url, "--quiet")
    assert proc.returncode == 1
    assert "malformed JSON" in one_error_line(proc)


def test_empty_tree_and_missing_folder_are_one_line(run_cli, tmp_path, embed_server):
    proc = run_cli("embed", tmp_path, "--api-url", embed_server.url)
    assert proc.returncode == 1 and "no text files found" in one_error_line(proc)
    proc = run_cli("embed", tmp_path / "missing", "--api-url", embed_server.url)
    assert proc.returncode == 1 and "not a directory" in one_error_line(proc)


def test_usage_errors_exit_2(run_cli, tmp_path):
    assert run_cli().returncode == 2
    assert run_cli("search").returncode == 2
    proc = run_cli("search", "x", "-k", "0", "-d", tmp_path)
    assert proc.returncode == 2 and "must be at least 1" in proc.stderr


def test_register_adds_the_code_command_to_an_outer_parser(tmp_path, capsys):
    from nndex.code.cli import register

    parser = argparse.ArgumentParser(prog="nndex")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["code", "search", "where", "is", "it", "-d", str(tmp_path), "-k", "3"])
    assert args.query == ["where", "is", "it"] and args.k == 3
    assert args.func is args.handler
    assert args.func(args) == 1  # no index there: status 1 and one line, no exception
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nndex code embed" in err[0]
    for argv in (["code", "embed"], ["code", "info", "."]):
        assert callable(parser.parse_args(argv).func)


def test_the_nndex_console_script_offers_code_when_present(tmp_path, capsys):
    cli = pytest.importorskip("nndex.cli")
    if not hasattr(cli, "main"):
        pytest.skip("nndex.cli has no main()")
    status = cli.main(["code", "search", "anything", "-d", str(tmp_path)])
    assert status == 1
    assert "nndex code embed" in capsys.readouterr().err


def test_a_plain_reembed_keeps_the_index_model_and_chunk_size(run_cli, code_tree, embed_server):
    proc = run_cli("embed", code_tree, "--api-url", embed_server.url, "--model", "fake-model", "--max-chars", "600", "--quiet")
    assert proc.returncode == 0, proc.stderr
    (code_tree / "python" / "inventory.py").write_text("def count_shelves(room):\n    return len(room)\n")
    embed_server.reset()
    proc = run_cli("embed", code_tree, "--json")  # no --api-url, --model or --max-chars
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert (stats["files_embedded"], stats["full_rebuild"], stats["model"]) == (1, False, "fake-model")
    assert embed_server.inputs == stats["chunks_embedded"] == 1
    assert json.loads(run_cli("info", code_tree, "--json").stdout)["chunker"]["max_chars"] == 600


def test_prompts_are_given_once_and_kept_by_later_runs(run_cli, code_tree, embed_server):
    proc = run_cli("embed", code_tree, "--api-url", embed_server.url, "--query-prompt", "query: ",
                   "--document-prompt", "passage: ", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert all(t.startswith("passage: ") for r in embed_server.requests for t in r["body"]["input"])
    info = json.loads(run_cli("info", code_tree, "--json").stdout)
    assert (info["query_prompt"], info["document_prompt"]) == ("query: ", "passage: ")
    assert "query prompt: 'query: '" in run_cli("info", code_tree).stdout
    embed_server.reset()
    proc = run_cli("search", "discount", "code", "-d", code_tree, "-k", "2")
    assert proc.returncode == 0, proc.stderr
    assert embed_server.requests[0]["body"]["input"] == ["query: discount code"]
    embed_server.reset()
    proc = run_cli("embed", code_tree, "--query-prompt", "q: ", "--json")  # the vectors stay valid
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks_embedded"] == 0 and embed_server.inputs == 0
    proc = run_cli("embed", code_tree, "--document-prompt", "", "--json")  # the documents change
    stats = json.loads(proc.stdout)
    assert stats["full_rebuild"] and stats["chunks_embedded"] == stats["chunks"]
    info = json.loads(run_cli("info", code_tree, "--json").stdout)
    assert (info["query_prompt"], info["document_prompt"]) == ("q: ", "")


def test_info_verifies_the_checksums_that_search_skips(run_cli, code_tree, embed_server):
    assert run_cli("embed", code_tree, "--api-url", embed_server.url).returncode == 0
    proc = run_cli("info", code_tree)
    assert proc.returncode == 0, proc.stderr
    index_file = code_tree / ".nndex" / "index.nndex"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit of the stored matrix, the bulk of the file
    index_file.write_bytes(bytes(data))
    proc = run_cli("info", code_tree)
    assert proc.returncode == 1
    assert re.search(r"damaged \(index\.nndex: .*checksum", one_error_line(proc)), proc.stderr
    index_file.write_bytes(bytes(data[: len(data) // 2]))  # a cut file fails the structure check, always made
    proc = run_cli("search", "cart", "-d", code_tree)
    assert proc.returncode == 1 and "damaged (index.nndex" in one_error_line(proc)

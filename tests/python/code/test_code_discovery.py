"""File discovery of `nndex code`: sorted walk, hidden/VCS/venv folders, .gitignore at every level
(negation included), binaries, special and unreadable files."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("pathspec")

from nndex.code.discovery import discover  # noqa: E402
from nndex.code.errors import CodeSearchError  # noqa: E402


def write(root, rel, content="x = 1\n", mode="w"):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_walk_is_recursive_and_sorted_by_full_path(tmp_path):
    for rel in ["b.py", "a/z.py", "a/b/c.py", "a_c.py", "A.py", "a/a.py"]:
        write(tmp_path, rel)
    assert discover(tmp_path).files == ["A.py", "a/a.py", "a/b/c.py", "a/z.py", "a_c.py", "b.py"]


def test_hidden_vcs_cache_and_virtualenv_folders_are_skipped(tmp_path):
    write(tmp_path, "main.py")
    write(tmp_path, ".hidden.py")
    write(tmp_path, ".git/config", "[core]\n")
    write(tmp_path, ".hg/store.txt")
    write(tmp_path, ".svn/entries")
    write(tmp_path, ".nndex/chunks.json", "{}")
    write(tmp_path, ".github/workflows/ci.yml", "on: push\n")
    write(tmp_path, "node_modules/left-pad/index.js", "module.exports = 1;\n")
    write(tmp_path, "pkg/__pycache__/mod.cpython-311.py", "cached\n")
    write(tmp_path, "venv/pyvenv.cfg", "home = /usr\n")
    write(tmp_path, "venv/lib/site.py")
    write(tmp_path, "tools/myenv/pyvenv.cfg", "home = /usr\n")
    write(tmp_path, "tools/myenv/bin/activate", "echo\n")
    write(tmp_path, "env/settings.py")  # a folder named env without pyvenv.cfg is source
    write(tmp_path, "pkg/mod.py")
    assert discover(tmp_path).files == ["env/settings.py", "main.py", "pkg/mod.py"]


def test_nested_gitignore_files_with_negation(tmp_path):
    write(tmp_path, ".gitignore", "*.log\n!important.log\nbuild/\n/secret.txt\n# comment\n\n")
    write(tmp_path, "app.py")
    write(tmp_path, "debug.log", "noise\n")
    write(tmp_path, "important.log", "kept\n")
    write(tmp_path, "secret.txt", "hidden at the root only\n")
    write(tmp_path, "build/out.py")
    write(tmp_path, "src/build/gen.py")  # "build/" matches a folder at any depth
    write(tmp_path, "src/secret.txt", "anchored pattern does not apply here\n")
    write(tmp_path, "src/trace.log", "noise\n")
    write(tmp_path, "src/.gitignore", "!trace.log\n*.tmp\ndata/\n")
    write(tmp_path, "src/cache.tmp", "tmp\n")
    write(tmp_path, "src/data/big.csv", "1,2\n")
    write(tmp_path, "src/deep/.gitignore", "!keep.tmp\n")
    write(tmp_path, "src/deep/keep.tmp", "re-included by the deeper file\n")
    write(tmp_path, "src/deep/drop.tmp", "still ignored\n")
    write(tmp_path, "other/cache.tmp", "not ignored: src/.gitignore does not reach here\n")
    assert discover(tmp_path).files == [
        "app.py",
        "important.log",
        "other/cache.tmp",
        "src/deep/keep.tmp",
        "src/secret.txt",
        "src/trace.log",
    ]


def test_negation_cannot_reinclude_a_file_inside_an_ignored_folder(tmp_path):
    # as in git: once a folder is excluded, nothing below it is looked at
    write(tmp_path, ".gitignore", "vendor/\n!vendor/keep.py\n")
    write(tmp_path, "vendor/keep.py")
    write(tmp_path, "main.py")
    assert discover(tmp_path).files == ["main.py"]


def test_folder_contents_pattern_with_negation(tmp_path):
    write(tmp_path, ".gitignore", "generated/*\n!generated/README.md\n")
    write(tmp_path, "generated/a.py")
    write(tmp_path, "generated/README.md", "# kept\n")
    assert discover(tmp_path).files == ["generated/README.md"]


def test_git_info_exclude_is_honoured(tmp_path):
    write(tmp_path, ".git/info/exclude", "local_notes.md\n")
    write(tmp_path, "local_notes.md", "mine\n")
    write(tmp_path, "main.py")
    assert discover(tmp_path).files == ["main.py"]


def test_binaries_are_skipped_by_extension_and_by_content(tmp_path):
    write(tmp_path, "logo.png", "not really an image but the extension decides\n")
    write(tmp_path, "model.safetensors", "xx\n")
    write(tmp_path, "blob.dat", b"abc\x00def", mode="wb")
    write(tmp_path, "late_nul.txt", b"a" * 9000 + b"\x00", mode="wb")  # NUL after the first 8 KiB
    write(tmp_path, "utf16.txt", "hi".encode("utf-16"), mode="wb")
    write(tmp_path, "unicode.py", "s = 'héllo wörld ✓'\n".encode(), mode="wb")
    report = discover(tmp_path)
    assert report.files == ["late_nul.txt", "unicode.py"]
    assert report.skipped["binary"] == 4


def test_large_files_are_skipped(tmp_path):
    write(tmp_path, "big.py", "x = 1\n" * 1000)
    write(tmp_path, "small.py")
    report = discover(tmp_path, max_bytes=1000)
    assert report.files == ["small.py"]
    assert report.skipped["too large"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links")
def test_special_files_and_links(tmp_path):
    write(tmp_path, "real/a.py")
    os.mkfifo(tmp_path / "pipe.py")  # would block a reader forever
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    os.symlink(tmp_path / "real", tmp_path / "linkdir")  # folders behind links are not followed
    os.symlink(tmp_path / "real" / "a.py", tmp_path / "alias.py")
    assert discover(tmp_path).files == ["alias.py", "real/a.py"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_files_are_skipped(tmp_path):
    path = write(tmp_path, "locked.py")
    write(tmp_path, "open.py")
    path.chmod(0)
    try:
        report = discover(tmp_path)
    finally:
        path.chmod(0o644)
    assert report.files == ["open.py"]


def test_unreadable_files_are_skipped_when_open_fails(tmp_path, monkeypatch):
    import builtins

    write(tmp_path, "locked.py")
    write(tmp_path, "open.py")
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    report = discover(tmp_path)
    assert report.files == ["open.py"]
    assert report.skipped["unreadable"] == 1


def test_not_a_directory(tmp_path):
    with pytest.raises(CodeSearchError, match="not a directory"):
        discover(tmp_path / "nope")


def test_ignore_files_above_the_root_apply_inside_a_work_tree(tmp_path):
    write(tmp_path, ".git/info/exclude", "scratch/\n")
    write(tmp_path, ".gitignore", "*.gen.py\n/top_only.py\n")
    write(tmp_path, "pkg/.gitignore", "big/\nsub/fixtures/small/\nfixtures/medium/\n!keep.gen.py\n")
    sub = tmp_path / "pkg" / "sub"
    write(sub, "a.py")
    write(sub, "b.gen.py")  # ignored by the top-level file
    write(sub, "keep.gen.py")  # re-included by pkg/.gitignore
    write(sub, "top_only.py")  # anchored at the top: not this one
    write(sub, "fixtures/big/data.py")  # "big/" matches at any depth
    write(sub, "fixtures/small/data.py")  # anchored at pkg/: pkg/sub/fixtures/small
    write(sub, "fixtures/medium/data.py")  # anchored at pkg/: means pkg/fixtures/medium, not this
    write(sub, "scratch/notes.py")
    assert discover(sub).files == ["a.py", "fixtures/medium/data.py", "keep.gen.py", "top_only.py"]

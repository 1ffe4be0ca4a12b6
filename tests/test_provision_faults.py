"""Provisioning under faults, on a small fake asset in a temporary course folder (never the real data/).

Each test reproduces one fault a learner meets: a stray file, a killed or interrupted fetch, two fetches at once,
a broken manifest, an unwritable folder, a corrupt provenance record, a typo in an asset name, a bad archive.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest

from pretrain_lessons.data import __main__ as cli
from pretrain_lessons.data import provision

FILES = {"toy/a.txt": "alpha\n", "toy/sub/b.txt": "beta\n"}


def _digest(files: dict[str, str]) -> str:
    lines = "".join(f"{p}\t{hashlib.sha256(c.encode()).hexdigest()}\n" for p, c in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _zip(path, files):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def course(tmp_path, monkeypatch):
    """A course folder with one asset, 'toy', served from a local zip; PRETRAIN_LESSONS_HOME points at it."""
    home, data = tmp_path / "home", tmp_path / "home" / "data"
    data.mkdir(parents=True)
    archive = tmp_path / "src" / "toy.zip"
    archive.parent.mkdir()
    manifest = {"version": 1, "assets": {"toy": {
        "title": "A toy asset", "licence": "MIT", "citation": "-", "builder": "copy", "targets": ["toy"],
        "sha256": _digest(FILES), "n_files": len(FILES), "size": sum(len(c) for c in FILES.values()),
        "sources": [{"type": "url", "format": "copy", "urls": [archive.as_uri()], "unzip": True,
                     "sha256": {"toy.zip": _zip(archive, FILES)}}]}},
        "files": {"toy": sorted(FILES)}}
    (data / "manifest.json").write_text(json.dumps(manifest, indent=1))
    monkeypatch.setenv("PRETRAIN_LESSONS_HOME", str(home))
    monkeypatch.delenv("PRETRAIN_LESSONS_DATA", raising=False)
    return {"home": home, "data": data, "archive": archive, "manifest": manifest, "tmp": tmp_path}


def _toy():
    return provision.load_manifest()["toy"]


def _run_cli(*args, capsys):
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _paragraph(text: str) -> bool:
    """One short paragraph: no traceback, a few lines at most."""
    return "Traceback" not in text and 0 < len(text.strip().splitlines()) <= 4


# ---------------------------------------------------------------- what is the asset's own


def test_a_stray_file_is_named_and_left_alone(course, capsys):
    assert provision.fetch_asset(_toy()) != "already verified"
    stray, notes = course["data"] / "toy" / ".DS_Store", course["data"] / "toy" / "sub" / "my notes.md"
    stray.write_bytes(b"\x00\x01finder")
    notes.write_text("remember: lr 3e-4")
    assert provision.check(_toy()) == "ok"                         # not corrupt, not partial
    assert provision.inspect(_toy()).extra == ["toy/.DS_Store", "toy/sub/my notes.md"]
    code, out, err = _run_cli("status", capsys=capsys)
    assert code == 0 and "toy/.DS_Store" in out + err and "left alone" in out + err
    (course["data"] / "toy" / "a.txt").write_text("tampered\n")   # the asset's own file, changed
    assert provision.check(_toy()) == "corrupt"
    provision.fetch_asset(_toy())
    assert (course["data"] / "toy" / "a.txt").read_text() == "alpha\n"
    assert stray.read_bytes() == b"\x00\x01finder" and notes.read_text() == "remember: lr 3e-4"
    provision.fetch_asset(_toy(), force=True)
    assert stray.exists() and notes.exists()


def test_verification_compares_the_pinned_file_list(course):
    provision.fetch_asset(_toy())
    (course["data"] / "toy" / "sub" / "b.txt").unlink()
    found = provision.inspect(_toy())
    assert found.state == "partial" and found.missing == ["toy/sub/b.txt"]
    # A source that gives a file the pin does not list is refused, and the file is named.
    extra = {**FILES, "toy/c.txt": "gamma\n"}
    asset = _toy()
    asset.sources[0]["sha256"] = {"toy.zip": _zip(course["archive"], extra)}
    with pytest.raises(provision.ProvisionError, match="toy/c.txt"):
        provision.fetch_asset(asset)


# ---------------------------------------------------------------- interrupted and concurrent fetches

KILLER = textwrap.dedent('''
    import os, signal, sys, time
    from pretrain_lessons.data import __main__ as cli, builders, provision

    point, how = sys.argv[1], sys.argv[2]

    def stop():
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt   # what Ctrl-C does

    if point.startswith("replace-"):
        n, real, calls = int(point.split("-")[1]), os.replace, []
        def replace(a, b):
            calls.append(b)
            if len(calls) == n:
                stop()
            return real(a, b)
        os.replace = replace
    elif point in ("download", "build"):
        table, key = (provision.FETCHERS, "url") if point == "download" else (builders.BUILDERS, "copy")
        real = table[key]
        def wrapped(*args):
            result = real(*args)
            stop()
        table[key] = wrapped
    elif point == "slow":   # for the concurrency test: a slow source, with its start and end times
        real = provision.FETCHERS["url"]
        def slow(*args):
            began = time.time()
            time.sleep(1.5)
            result = real(*args)
            with open(sys.argv[3], "a") as fh:
                fh.write(f"{began} {time.time()}\\n")
            return result
        provision.FETCHERS["url"] = slow
    sys.exit(cli.main(["fetch", *sys.argv[4:]] if point == "slow" else ["fetch", "--force", "toy"]))
''')


def _spawn(course, *args):
    script = course["tmp"] / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "PRETRAIN_LESSONS_HOME": str(course["home"]), "PRETRAIN_LESSONS_PROGRESS": "off"}
    env.pop("PRETRAIN_LESSONS_DATA", None)
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("how", ["kill", "interrupt"])
@pytest.mark.parametrize("point", ["download", "build", "replace-1", "replace-2", "replace-3", "replace-4"])
def test_a_fetch_stopped_at_any_point_leaves_a_verified_asset(course, capsys, point, how):
    provision.fetch_asset(_toy())
    stray = course["data"] / "toy" / "notes.txt"
    stray.write_text("mine")
    proc = _spawn(course, point, how)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err                        # it really was stopped
    if how == "kill":
        assert proc.returncode == -signal.SIGKILL
    code, out, err = _run_cli("verify", "toy", capsys=capsys)   # the next command finds the asset in place
    assert code == 0, out + err
    assert provision.check(_toy()) == "ok" and stray.read_text() == "mine"
    assert not [p for p in (course["data"] / ".staging").glob("toy-*")]   # nothing half-done left behind


def test_stale_staging_folders_are_cleaned(course):
    stale = course["data"] / ".staging" / "toy-abandoned"
    (stale / "work").mkdir(parents=True)
    (stale / "work" / "half.zip").write_bytes(b"PK")
    provision.fetch_asset(_toy())
    assert not stale.exists()


def test_two_fetches_at_once_take_turns_and_both_succeed(course):
    log = course["tmp"] / "times.txt"
    first, second = _spawn(course, "slow", "-", log, "toy"), _spawn(course, "slow", "-", log, "toy")
    results = [p.communicate(timeout=180) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    assert provision.check(_toy()) == "ok"
    intervals = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    # Either the second one waited and found the asset already verified, or the two fetches did not overlap.
    assert len(intervals) == 1 or intervals[0][1] <= intervals[1][0], intervals
    assert "already verified" in "".join(out for out, _ in results) or len(intervals) == 2


# ---------------------------------------------------------------- broken files and typos: one clear paragraph


@pytest.mark.parametrize("command", [["status"], ["verify"], ["fetch"]])
def test_a_broken_manifest_gives_one_paragraph(course, capsys, command):
    (course["data"] / "manifest.json").write_text('{"version": 1, "assets": {"toy": ')
    code, out, err = _run_cli(*command, capsys=capsys)
    assert code != 0
    assert str(course["data"] / "manifest.json") in err and "git checkout" in err and _paragraph(err), err


def test_an_unwritable_data_folder_is_explained(course, capsys, monkeypatch):
    blocker = course["tmp"] / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(blocker / "data"))
    code, out, err = _run_cli("fetch", "toy", capsys=capsys)
    assert code != 0 and str(blocker / "data") in err and "PRETRAIN_LESSONS_DATA" in err and _paragraph(err), err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to read-only folders")
def test_a_read_only_data_folder_is_explained_and_verified_data_still_works(course, capsys):
    provision.fetch_asset(_toy())
    course["data"].chmod(0o555)
    try:
        assert _run_cli("verify", capsys=capsys)[0] == 0          # reading needs no write access
        assert _run_cli("fetch", capsys=capsys)[0] == 0           # nothing to fetch: fine
        code, out, err = _run_cli("fetch", "--force", "toy", capsys=capsys)
        assert code != 0 and "cannot be written" in err and _paragraph(err), err
    finally:
        course["data"].chmod(0o755)


def test_a_corrupt_provenance_record_is_explained(course, capsys):
    provision.fetch_asset(_toy())
    record = course["data"] / ".provenance" / "toy.json"
    record.write_text('{"source": "PyPI')                           # cut short
    code, out, err = _run_cli("status", capsys=capsys)
    assert code != 0 and str(record) in err and "fetch --force toy" in err and _paragraph(err), err
    provision.fetch_asset(_toy(), force=True)                      # the fix the message names
    assert _run_cli("status", capsys=capsys)[0] == 0


@pytest.mark.parametrize("command", ["verify", "fetch", "status"])
def test_an_unknown_asset_name_is_refused_with_a_suggestion(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path / "data"))   # the real manifest, a private data folder
    code, out, err = _run_cli(command, "mnsit", capsys=capsys)
    assert code != 0 and "'mnsit'" in err and "Did you mean 'mnist'?" in err and _paragraph(err), err


# ---------------------------------------------------------------- archives from URLs


def test_an_archive_with_the_wrong_checksum_is_refused_before_unpacking(course, monkeypatch):
    asset = _toy()
    asset.sources[0]["sha256"] = {"toy.zip": "0" * 64}
    unpacked = []
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda self, *a, **k: unpacked.append(a))
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda self, *a, **k: unpacked.append(a))
    with pytest.raises(provision.ProvisionError, match=r"toy.zip has sha256 .*expected 0000"):
        provision.fetch_asset(asset)
    assert unpacked == []


def test_archives_from_urls_are_size_limited(course):
    asset = _toy()
    asset.sources[0]["max_bytes"] = 64                               # smaller than the zip
    with pytest.raises(provision.ProvisionError, match="larger than"):
        provision.fetch_asset(asset)
    bomb = {"toy/a.txt": "a" * 5_000_000, "toy/sub/b.txt": "beta\n"}   # 5 MB of 'a' compresses to a few KB
    asset = _toy()
    asset.sources[0]["sha256"] = {"toy.zip": _zip(course["archive"], bomb)}
    asset.sources[0]["max_bytes"] = 1_000_000
    with pytest.raises(provision.ProvisionError, match="unpack to"):
        provision.fetch_asset(asset)
    assert provision.check(_toy()) == "missing"

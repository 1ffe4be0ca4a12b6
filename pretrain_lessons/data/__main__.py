"""Command line: python -m pretrain_lessons.data fetch | status | verify [ASSET ...]"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import paths
from . import provision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain_lessons.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch and verify assets (all by default); skips what is already verified")
    p_fetch.add_argument("assets", nargs="*")
    p_fetch.add_argument("--force", action="store_true", help="fetch again even if verified")
    p_status = sub.add_parser("status", help="table of assets: size, source used, verified")
    p_status.add_argument("assets", nargs="*")
    p_verify = sub.add_parser("verify", help="re-hash every asset on disk; exit 1 if any is missing or corrupt")
    p_verify.add_argument("assets", nargs="*")
    p_pin = sub.add_parser("pin", help="(maintainers) rebuild assets from a source and write their digests to the manifest")
    p_pin.add_argument("assets", nargs="*")
    p_pin.add_argument("--source", type=int, default=-1, help="index of the source to pin from (default: the last, the registry one)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except provision.ProvisionError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted. The data folder holds each asset's old verified copy or its new one; run the command "
              "again to finish.", file=sys.stderr)
        return 130


def _run(args) -> int:
    if args.command == "fetch":
        start = time.perf_counter()
        used = provision.fetch(args.assets or None, force=args.force)
        for name, source in used.items():
            print(f"{name:<18} {source}")
        print(f"Data ready in {paths.data_dir()} ({time.perf_counter() - start:.1f} s).")
        return 0
    if args.command == "status":
        print(provision.format_status(provision.status_rows(verify=True, names=args.assets or None)))
        return 0
    if args.command == "verify":
        rows = provision.status_rows(verify=True, names=args.assets or None)
        print(provision.format_status(rows))
        bad = [r["asset"] for r in rows if r["state"] != "ok"]
        if bad:
            print(f"\nNot verified: {', '.join(bad)}. Run: python -m pretrain_lessons.data fetch {' '.join(bad)}",
                  file=sys.stderr)
            return 1
        return 0
    if args.command == "pin":
        manifest_file = paths.manifest_path()
        raw = json.loads(manifest_file.read_text(encoding="utf-8"))
        manifest = provision.load_manifest()
        for asset in [provision.asset_named(manifest, n) for n in args.assets] or manifest.values():
            source = asset.sources[args.source]
            provision.fetch_asset(asset, sources=[source], pin=True)
            raw["assets"][asset.name].update(sha256=asset.sha256, n_files=asset.n_files, size=asset.size)
            raw.setdefault("files", {})[asset.name] = asset.files
            print(f"{asset.name:<18} {asset.n_files:>5} files {asset.size / 1e6:8.1f} MB  {asset.sha256}")
        manifest_file.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())

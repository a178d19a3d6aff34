"""Packaging benchmark: the seed's way, ours, and the I/O floor, side by side.

For synthetic hub models of the given sizes (default 64, 256 and 1024 MB of
float32 weights), served over loopback HTTP in hub's compressed format, each
variant runs in a fresh process:

  floor  download the archive and write the same bytes to disk, nothing else
  ours   packaging_job's package(): stream, extract, inspect, hash, publish
  seed   the blog recipe: hub.load, tf.saved_model.save, then tar+gzip the
         model directory as SageMaker does for model.tar.gz

It prints wall time and peak RSS, each as a ratio to the floor, measured in
one run. Downloads are capped at --bandwidth MB/s (default 100, about what a
training instance gets from a hub or S3; 0 = loopback speed, where the floor
is a memory copy and gzip's inflate, ~200 MB/s a core, dominates ours).

Usage: python -m benchmarks.packaging [--sizes 64,256,1024] [--bandwidth 100]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIANTS = ("floor", "ours", "seed")
_CHUNK = 1 << 20


def floor(url: str, out: pathlib.Path) -> None:
    out.mkdir(parents=True)
    # The same bytes the others fetch: the hub's compressed download.
    with (
        urllib.request.urlopen(f"{url}?tf-hub-format=compressed") as response,
        (out / "archive.tar.gz").open("wb") as target,
    ):
        shutil.copyfileobj(response, target, _CHUNK)


def ours(url: str, out: pathlib.Path) -> None:
    sys.path.insert(0, str(ROOT / "packaging_job"))
    from packager.package import package

    package(url, str(out), "bench", 1, log=lambda message: None)


def seed(url: str, out: pathlib.Path) -> None:
    os.environ["TFHUB_CACHE_DIR"] = str(out / "hub-cache")
    import tensorflow as tf
    import tensorflow_hub as hub

    model = hub.load(url)
    model_dir = out / "model"
    tf.saved_model.save(model, str(model_dir / "bench" / "1"))
    # SageMaker packs SM_MODEL_DIR into model.tar.gz with gzip's default level.
    with tarfile.open(out / "model.tar.gz", "w:gz", compresslevel=6) as archive:
        archive.add(model_dir, arcname=".")


def child(variant: str, url: str, out: str) -> None:
    run = {"floor": floor, "ours": ours, "seed": seed}[variant]
    start = time.perf_counter()
    run(url, pathlib.Path(out))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def build(megabytes: int, folder: str, archive: str) -> None:
    from fixtures.demo_model import save_weights_model, write_archive

    save_weights_model(folder, megabytes)
    with open(archive, "wb") as target:
        # Level 1: real float weights hardly compress; building stays quick.
        write_archive(folder, target, compresslevel=1)


def _python(*args: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.packaging", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def measure(sizes: list[int], bandwidth_mb: float) -> list[dict]:
    from fixtures.hub_server import HubServer

    rows = []
    cap = bandwidth_mb * 2**20 if bandwidth_mb > 0 else None
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as folder, HubServer(cap) as hub:
        work = pathlib.Path(folder)
        for megabytes in sizes:
            model, archive = work / f"src-{megabytes}", work / f"{megabytes}.tar.gz"
            print(f"building a {megabytes} MB model", file=sys.stderr, flush=True)
            _python("--build", str(megabytes), str(model), str(archive))
            hub.routes[f"/bench/{megabytes}"] = (200, archive)
            url = f"{hub.url}/bench/{megabytes}"
            row = {"size_mb": megabytes, "archive_mb": archive.stat().st_size / 2**20}
            for variant in VARIANTS:
                print(f"  {variant}", file=sys.stderr, flush=True)
                out = work / f"out-{variant}"
                row[variant] = json.loads(_python("--child", variant, url, str(out)))
                shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(model)
            archive.unlink()
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| model | floor s | ours s (x floor) | seed s (x floor) | seed / ours | floor RSS MB "
        "| ours RSS MB (x floor) | seed RSS MB (x floor) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        f, o, s = row["floor"], row["ours"], row["seed"]
        lines.append(
            f"| {row['size_mb']} MB | {f['seconds']:.2f} "
            f"| {o['seconds']:.2f} ({o['seconds'] / f['seconds']:.2f}x) "
            f"| {s['seconds']:.2f} ({s['seconds'] / f['seconds']:.2f}x) "
            f"| {s['seconds'] / o['seconds']:.1f}x "
            f"| {f['peak_rss_mb']:.0f} "
            f"| {o['peak_rss_mb']:.0f} ({o['peak_rss_mb'] / f['peak_rss_mb']:.2f}x) "
            f"| {s['peak_rss_mb']:.0f} ({s['peak_rss_mb'] / f['peak_rss_mb']:.2f}x) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,1024", help="model sizes in MB")
    parser.add_argument("--bandwidth", type=float, default=100, help="MB/s; 0 for no cap")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "URL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=3, metavar=("MB", "FOLDER", "ARCHIVE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
    elif args.build:
        build(int(args.build[0]), args.build[1], args.build[2])
    else:
        sizes = [int(size) for size in args.sizes.split(",")]
        print(f"downloads capped at {args.bandwidth:g} MB/s" if args.bandwidth else "no download cap")
        print(table(measure(sizes, args.bandwidth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The blur(3) + brightness(1.3) + JPEG pipeline in Pillow, for comparison with sharp on the same images.

Usage: python3 bench/pillow_pipeline.py [--processes N] OUT_DIR IMAGE...
Prints one JSON line {"images": n, "processes": p, "seconds": s, "images_per_second": r}. With N > 1 the images go
through a multiprocessing Pool(N), one image per task (what a Python service on N cores would do); the pool is
started and warmed up before the clock starts, as a long-running service's pool would be.
JPEG: quality 80, baseline (not progressive), 4:2:0 chroma subsampling, no Huffman optimisation (Pillow's defaults,
spelled out so the sharp side can match them).
"""
import argparse
import json
import multiprocessing
import os
import time

from PIL import Image, ImageEnhance, ImageFilter

JPEG_OPTIONS = {"quality": 80, "subsampling": 2, "progressive": False, "optimize": False}


def process(task: "tuple[int, str, str]") -> int:
    index, path, out_dir = task
    with Image.open(path) as image:
        image = image.convert("RGB").filter(ImageFilter.GaussianBlur(3))
        image = ImageEnhance.Brightness(image).enhance(1.3)
        image.save(os.path.join(out_dir, f"pillow-{index}.jpg"), **JPEG_OPTIONS)
    return index


def noop(_: int) -> int:
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("out_dir")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    tasks = [(index, path, args.out_dir) for index, path in enumerate(args.images)]
    if args.processes <= 1:
        started = time.perf_counter()
        for task in tasks:
            process(task)
        seconds = time.perf_counter() - started
    else:
        with multiprocessing.Pool(args.processes) as pool:
            pool.map(noop, range(args.processes))
            started = time.perf_counter()
            for _ in pool.imap_unordered(process, tasks):
                pass
            seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "images": len(tasks),
                "processes": max(1, args.processes),
                "seconds": seconds,
                "images_per_second": len(tasks) / seconds,
            }
        )
    )


if __name__ == "__main__":
    main()

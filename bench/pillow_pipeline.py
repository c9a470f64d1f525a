"""The blur(3) + brightness(1.3) + JPEG pipeline in Pillow, for comparison with sharp on the same images.

Usage: python3 bench/pillow_pipeline.py OUT_DIR IMAGE... ; prints one JSON line {"images": n, "seconds": s}.
"""
import json
import os
import sys
import time

from PIL import Image, ImageEnhance, ImageFilter


def main() -> None:
    out_dir, images = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    for index, path in enumerate(images):
        with Image.open(path) as image:
            image = image.convert("RGB").filter(ImageFilter.GaussianBlur(3))
            image = ImageEnhance.Brightness(image).enhance(1.3)
            image.save(os.path.join(out_dir, f"pillow-{index}.jpg"), quality=80)
    print(json.dumps({"images": len(images), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()

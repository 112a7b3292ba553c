"""Benchmark of process_image against bare Pillow doing the same, and against the old 2048 px rule.

Run from the repository root:  python bench/photos.py [--runs N]

Cases: iphone6_gps.jpg (8 MP), a 12 MP JPEG made here from it (4000x3000, EXIF kept), and
iphone11promax_gps.heic (8.5 MP). Three variants per case:

- process: process_image as the worker runs it. A JPEG is decoded at the smallest DCT scale
  (1/2, 1/4, 1/8) whose long side still reaches 1,600 px, and that is the display copy when it
  is at most 2,048 px (4000x3000 -> 2000x1500, no resampling at all).
- fixed2048: process_image with display_min_px=2048, which is the rule before DCT-sized
  display copies (exactly 2048 px: a 4000 px JPEG is decoded at full size, then resampled).
  The speed-up is process against this, measured in the same run.
- baseline: bare Pillow (with pillow-heif) doing what process_image must at least do: open,
  draft() to the same DCT scale for a JPEG, decode, resize to the same display size if
  needed, encode it, resize that to the 320 px thumbnail, encode it, with the same quality and
  optimize settings. Everything process_image does on top (header and container checks, EXIF
  reading, orientation, the fresh-image copy, the output check) is the overhead measured by
  the time ratio.

Time: median of --runs runs in this process after one warm-up, alternating the two variants
so that both see the same machine state.

Peak memory: measured in a fresh child process per variant and case, as the kernel's
high-water mark of that process's resident set (VmHWM in /proc/self/status, reset just before
the run through /proc/self/clear_refs) minus the resident set just before the run.
tracemalloc is not used because it sees only allocations made through Python's allocator:
Pillow's pixel buffers and libjpeg's and libheif's working memory are malloc'ed in C and would
be invisible, although they are nearly all of the peak. getrusage's ru_maxrss is not used
either: on Linux it survives fork and exec, so a child started by a big parent reports the
parent's peak (this bench's own parent reached ~190 MiB making the 12 MP file, and every child
then "peaked" there). A fresh process is needed anyway, because a warm-up run would leave
freed memory in the allocator, RSS that a later run reuses without raising the mark. The
figure is reported as a multiple of the decoded image size, width * height * 3 bytes (Pillow
holds RGB in 4 bytes per pixel, so the decoded image alone already counts as 1.33x).
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402 - after the path setup

from stopapp.media.imaging import process_image  # noqa: E402 - registers the HEIF opener too

PHOTOS = Path(os.environ.get("STOPAPP_TESTDATA", REPO / "tests" / "data")) / "photos"
DISPLAY_MAX = 2048
DISPLAY_MIN = 1600
THUMB_MAX = 320
TIME_TARGET = 1.3
SPEEDUP_TARGET = 2.5  # the 12 MP JPEG, against fixed2048
MEMORY_TARGET = 3.0
MIB = 1024 * 1024


def fit(size: tuple[int, int], max_px: int) -> tuple[int, int]:
    """Long side at most max_px, aspect kept, never upscaled."""
    width, height = size
    if max(size) <= max_px:
        return size
    scale = max_px / max(size)
    return max(1, round(width * scale)), max(1, round(height * scale))


def dct_scale(size: tuple[int, int]) -> int:
    """The largest power-of-two reduction whose long side still reaches DISPLAY_MIN."""
    for scale in (8, 4, 2):
        if -(-max(size) // scale) >= DISPLAY_MIN and min(size) >= scale:
            return scale
    return 1


def baseline(path: str) -> tuple[bytes, bytes]:
    """Bare Pillow: the same decode, the same resizes and the same two JPEG encodes."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            scale = dct_scale(im.size)
            if scale > 1:
                im.draft(None, (im.width // scale, im.height // scale))
        target = fit(im.size, DISPLAY_MAX)
        im.load()
        display = im.resize(target, Image.Resampling.LANCZOS) if im.size != target else im.copy()
    if display.mode != "RGB":
        display = display.convert("RGB")
    out = io.BytesIO()
    display.save(out, "JPEG", quality=85, optimize=True)
    thumb = display.resize(fit(display.size, THUMB_MAX), Image.Resampling.LANCZOS)
    small = io.BytesIO()
    thumb.save(small, "JPEG", quality=80, optimize=True)
    return out.getvalue(), small.getvalue()


def ours(path: str) -> tuple[bytes, bytes]:
    result = process_image(path, display_max_px=DISPLAY_MAX, thumb_max_px=THUMB_MAX)
    return result.display_jpeg, result.thumb_jpeg


def fixed2048(path: str) -> tuple[bytes, bytes]:
    result = process_image(
        path, display_max_px=DISPLAY_MAX, thumb_max_px=THUMB_MAX, display_min_px=DISPLAY_MAX
    )
    return result.display_jpeg, result.thumb_jpeg


VARIANTS = {"process": ours, "fixed2048": fixed2048, "baseline": baseline}


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_peak(variant: str, path: str) -> None:
    """Child process: run once and print the peak resident memory added by the run, in KiB."""
    Image.init()  # load every plugin now, so their code is not counted as the run's memory
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM to the current RSS (Linux 4.0+)
    before = status_kib("VmRSS")
    VARIANTS[variant](path)
    print(max(0, status_kib("VmHWM") - before))


def measure_peak(variant: str, path: str) -> float:
    """Peak bytes added by one run of `variant`, measured in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, path],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return int(out.stdout.strip().splitlines()[-1]) * 1024


def timed(fn, path: str) -> float:  # noqa: ANN001 - one of VARIANTS
    started = time.perf_counter()
    fn(path)
    return time.perf_counter() - started


def make_12mp_jpeg(directory: str) -> str:
    """A 4000x3000 JPEG from iphone6_gps.jpg, its EXIF (with GPS) carried over."""
    path = os.path.join(directory, "jpeg_12mp.jpg")
    with Image.open(PHOTOS / "iphone6_gps.jpg") as source:
        exif = source.info.get("exif", b"")
        big = source.resize((4000, 3000), Image.Resampling.BICUBIC)
    big.save(path, "JPEG", quality=92, exif=exif)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (median)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_peak(*args.child)
        return

    with tempfile.TemporaryDirectory() as scratch:
        cases = {
            "jpeg_8mp": str(PHOTOS / "iphone6_gps.jpg"),
            "jpeg_12mp": make_12mp_jpeg(scratch),
            "heic_8.5mp": str(PHOTOS / "iphone11promax_gps.heic"),
        }
        for name, path in cases.items():
            with Image.open(path) as im:
                width, height = im.size
            decoded = width * height * 3
            for fn in VARIANTS.values():  # warm-up: file cache, lazy imports, code paths
                fn(path)
            times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.runs):
                for variant, fn in VARIANTS.items():
                    times[variant].append(timed(fn, path))
            ours_s = statistics.median(times["process"])
            old_s = statistics.median(times["fixed2048"])
            base_s = statistics.median(times["baseline"])
            ours_peak = measure_peak("process", path)
            base_peak = measure_peak("baseline", path)
            size = display_size(path)
            print(
                f"{name} ({width}x{height} -> display {size}): process {ours_s:.3f} s, "
                f"baseline {base_s:.3f} s, ratio {ours_s / base_s:.2f}x (target <= "
                f"{TIME_TARGET}x); fixed 2048 px {old_s:.3f} s, speed-up {old_s / ours_s:.2f}x"
                f"{f' (target >= {SPEEDUP_TARGET}x)' if name == 'jpeg_12mp' else ''}; "
                f"peak {ours_peak / MIB:.1f} MiB = {ours_peak / decoded:.2f}x decoded "
                f"(target <= {MEMORY_TARGET:g}x); baseline peak {base_peak / MIB:.1f} MiB = "
                f"{base_peak / decoded:.2f}x",
                flush=True,
            )


def display_size(path: str) -> str:
    with Image.open(io.BytesIO(ours(path)[0])) as display:
        return f"{display.width}x{display.height}"

if __name__ == "__main__":
    main()

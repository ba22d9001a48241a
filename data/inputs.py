"""User inputs: image uploads and free text, validated into what `model.prepare` accepts."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

# An upload larger than this many pixels is refused before it is decoded (decompression-bomb guard).
MAX_IMAGE_PIXELS = 40_000_000
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
BIT_DEPTHS = (8, 10, 12, 14, 16)  # the bit depths integer greyscale is read at (the smallest its values fit)


class InputError(ValueError):
    """An input the user gave that cannot be used; the message says why and what to do."""


def load_image(raw: bytes, name: str = "upload") -> Image.Image:
    """Decode uploaded bytes into an RGB or L PIL image as an image viewer shows it (see `as_displayed`), or
    raise InputError with a clear message."""
    if not raw:
        raise InputError(f"{name} is empty: upload a PNG, JPEG, BMP, GIF or WebP image.")
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name} is {len(raw) / 2**20:.0f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB.")
    limit = f"images above {MAX_IMAGE_PIXELS / 1e6:.0f} MP are refused. Downscale it first."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise InputError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP); {limit}")
            img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # Pillow refuses before we can
        raise InputError(f"{name} is too large for Pillow to open ({e}); {limit}") from e
    except UnidentifiedImageError as e:
        raise InputError(
            f"{name} is not an image HeadScope can read ({type(e).__name__}). "
            "Upload a PNG, JPEG, BMP, GIF or WebP file."
        ) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name} looks corrupt or truncated ({e}). Re-save it as PNG or JPEG.") from e
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    return as_displayed(img)


def as_displayed(img: Image.Image) -> Image.Image:
    """An image of any Pillow mode as L or RGB, the way a viewer shows it: the EXIF orientation applied,
    16- and 32-bit integer greyscale scaled to 8 bits from the bit depth its values use (8, 10, 12, 14 or 16
    bits: 12-bit sensor data in a 16-bit PNG fills the range; min-max beyond 16 bits), float greyscale
    min-max scaled, transparency (RGBA, LA, palette with a transparent colour) laid over white, CMYK and palette
    images converted to RGB."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float64)
        bits = next((b for b in BIT_DEPTHS if a.max() < 2**b), None) if img.mode != "F" and a.min() >= 0 else None
        lo, hi = (0.0, 2.0**bits - 1) if bits else (a.min(), a.max())
        scaled = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1) * 255
        return Image.fromarray(scaled.round().astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        grey = img.mode.startswith("L")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat.convert("L") if grey else flat
    return img.convert("L" if img.mode in ("L", "1") else "RGB")


def check_text(text: str) -> str:
    """Strip and validate a free-text input; raise InputError for an empty text."""
    if text is None or not str(text).strip():
        raise InputError("The text is empty: type a sentence to analyse.")
    return str(text).strip()


CORRUPTIONS = ("blur", "noise", "paste")  # what `corrupt` does to a region of an image
REGIONS = {  # a region as fractions of the image (left, top, right, bottom)
    "centre": (0.25, 0.25, 0.75, 0.75),
    "top half": (0.0, 0.0, 1.0, 0.5),
    "bottom half": (0.0, 0.5, 1.0, 1.0),
    "left half": (0.0, 0.0, 0.5, 1.0),
    "right half": (0.5, 0.0, 1.0, 1.0),
    "whole image": (0.0, 0.0, 1.0, 1.0),
}


def corrupt(image: Image.Image, how: str, region: str, donor: Image.Image | None = None, seed: int = 0) -> Image.Image:
    """A corrupted copy of `image` for activation patching: inside `region` (REGIONS) blurred (a Gaussian of a
    tenth of the image's shorter side), noised (seeded Gaussian noise of standard deviation 64 on 0-255 values), or
    pasted from `donor` (resized to the image). Outside the region it is the image, pixel for pixel."""
    if how not in CORRUPTIONS or region not in REGIONS:
        raise ValueError(f"corrupt: how is one of {', '.join(CORRUPTIONS)}, region one of {', '.join(REGIONS)}.")
    base = image.convert("RGB") if image.mode not in ("L", "RGB") else image.copy()
    w, h = base.size
    l, t, r, b = REGIONS[region]
    box = (round(l * w), round(t * h), round(r * w), round(b * h))
    if how == "blur":
        changed = base.filter(ImageFilter.GaussianBlur(max(1.0, min(w, h) / 10)))
    elif how == "noise":
        values = np.asarray(base, dtype=np.float64)
        values = values + np.random.default_rng(seed).normal(0.0, 64.0, values.shape)
        changed = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), base.mode)
    else:
        if donor is None:
            raise ValueError("corrupt: paste needs a donor image.")
        changed = donor.convert(base.mode).resize((w, h), Image.Resampling.BILINEAR)
    base.paste(changed.crop(box), box[:2])
    return base

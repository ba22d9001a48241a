"""User inputs: image uploads and free text, validated into what `model.prepare` accepts."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

# An upload larger than this many pixels is refused before it is decoded (decompression-bomb guard).
MAX_IMAGE_PIXELS = 40_000_000
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


class InputError(ValueError):
    """An input the user gave that cannot be used; the message says why and what to do."""


def load_image(raw: bytes, name: str = "upload") -> Image.Image:
    """Decode uploaded bytes into an RGB or L PIL image, or raise InputError with a clear message."""
    if not raw:
        raise InputError(f"{name} is empty: upload a PNG, JPEG, BMP, GIF or WebP image.")
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name} is {len(raw) / 2**20:.0f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP); images above "
                    f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP are refused. Downscale it first."
                )
            img.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(
            f"{name} is not an image HeadScope can read ({type(e).__name__}). "
            "Upload a PNG, JPEG, BMP, GIF or WebP file."
        ) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name} looks corrupt or truncated ({e}). Re-save it as PNG or JPEG.") from e
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    return img.convert("L" if img.mode in ("L", "1", "I", "I;16", "F") else "RGB")


def check_text(text: str) -> str:
    """Strip and validate a free-text input; raise InputError for an empty text."""
    if text is None or not str(text).strip():
        raise InputError("The text is empty: type a sentence to analyse.")
    return str(text).strip()

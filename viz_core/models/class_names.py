"""Reading a class-name file: UTF-8 text, one name per non-blank line, in output order.

Plain Python (no NumPy), so the command line reads ``--labels`` before TensorFlow loads; the
public API reads a labels path with the same checks and words.
"""
from __future__ import annotations

from pathlib import Path

from viz_core.errors import ParameterError

# A class-name list is a few kB (ImageNet's 1,000 names: 22 kB); more is not a label file.
MAX_LABELS_BYTES = 1024 * 1024


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """The class names in ``path``, one per non-blank line (stripped).

    Raises
    ------
    ParameterError
        Not a regular file, larger than :data:`MAX_LABELS_BYTES`, not UTF-8 (the message names
        the line and the byte) or holding NUL bytes.
    """
    shown = repr(str(path))
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"The labels file {shown} does not exist or is not a file; give a "
                             "text file with one class name per line.")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ParameterError(f"The labels file {shown} is larger than "
                             f"{MAX_LABELS_BYTES // 2**20} MB; it should hold one class name "
                             "per line.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParameterError(
            f"The labels file {shown} is not UTF-8 text: line {line} has the byte "
            f"0x{data[exc.start]:02x}. Save it as UTF-8 (one class name per line).") from None
    if "\x00" in text:
        raise ParameterError(f"The labels file {shown} is not a text file (it holds NUL "
                             "bytes); give one class name per line.")
    return tuple(line.strip() for line in text.splitlines() if line.strip())

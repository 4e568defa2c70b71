"""Domain errors: every problem a user can cause or fix, in words a student understands.

Pages show ``str(error)`` with ``st.error``; the command line prints ``error: <message>`` and
exits with status 2. Anything that is *not* a :class:`VizError` is a bug in this project.
"""


class VizError(Exception):
    """Base class: a problem with the user's input or setup, never a bug."""


class ImageError(VizError):
    """The image cannot be read or used (empty, truncated, not an image, too large...)."""


class ModelError(VizError):
    """The model cannot be loaded or used (bad file, no conv layers, unsupported shape...)."""


class UnsafeModelError(ModelError):
    """The model file contains code (e.g. a Python ``Lambda`` layer) and was refused."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights are not on this machine and could not be downloaded."""


class ParameterError(VizError, ValueError):
    """A parameter has a value that does not fit (unknown layer, class, method...)."""


class Cancelled(VizError):
    """Long work was stopped by the user between two steps."""

"""``python -m viz_core``: the command line."""
import os
import sys

# Program entry, not library code: quiet TensorFlow's C++ start-up logs before it is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from viz_core.cli import main  # noqa: E402

sys.exit(main())

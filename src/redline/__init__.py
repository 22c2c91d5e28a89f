"""redline: make Keras use the CPU cores and GPUs it has.

Data flows one way: detect() -> plan() -> configure() -> run/measure -> diagnose -> report.
Importing redline imports neither TensorFlow nor Keras.
"""

from .applying import AppliedPlan, configure
from .detection import NotAvailable, Snapshot, detect
from .errors import LateConfigurationError, RedlineError, UsageError
from .planning import Plan, Setting, plan

__version__ = "0.1.0"

__all__ = [
    "AppliedPlan", "LateConfigurationError", "NotAvailable", "Plan", "RedlineError", "Setting", "Snapshot",
    "UsageError", "configure", "detect", "plan",
]


def __getattr__(name):
    """`redline.data` on first use, so `import redline` stays light."""
    if name == "data":
        import importlib

        return importlib.import_module(".data", __name__)
    raise AttributeError(f"module 'redline' has no attribute {name!r}")

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
    """`redline.data`, `redline.Monitor`, `redline.diagnose` and `redline.tune` on first use, so `import redline` stays light."""
    import importlib

    if name == "data":
        return importlib.import_module(".data", __name__)
    if name == "Monitor":
        return importlib.import_module(".monitoring.monitor", __name__).Monitor
    if name == "diagnose":
        return importlib.import_module(".diagnosis.probe", __name__).diagnose
    if name == "tune":
        return importlib.import_module(".tuning.notebook", __name__).tune
    raise AttributeError(f"module 'redline' has no attribute {name!r}")

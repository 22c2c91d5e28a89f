"""benchmarks/tune_scripts.py's delivered figure: each epoch after the first, with the one iterator drop that is its
own."""

import importlib.util
import pathlib

import pytest

_spec = importlib.util.spec_from_file_location(
    "tune_scripts", pathlib.Path(__file__).parents[1] / "benchmarks" / "tune_scripts.py")
tune_scripts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tune_scripts)


def epoch(begin, seconds, steps=10, fit_end=None):
    e = {"begin": begin, "end": begin + seconds, "steps": steps}
    if fit_end is not None:
        e["fit_end"] = begin + seconds + fit_end
    return e


def test_one_fit_counts_the_drops_at_its_later_epochs_starts_and_not_its_return():
    # 4 epochs of 1 s; the starts of epochs 2-4 waited 0.5 s each (inside their begin-to-end), the return 2 s more
    epochs = [epoch(0, 3.0), epoch(3, 1.5), epoch(4.5, 1.5), epoch(6, 1.5, fit_end=2.0)]
    assert tune_scripts.steady_rate(epochs) == pytest.approx(30 / 4.5)  # not 30 / 6.5: 4 drops over 3 epochs
    assert tune_scripts.steady_rate(epochs, seconds=True) == pytest.approx(4.5)  # the window that rate is timed over


def test_a_fit_s_first_epoch_owns_the_drop_at_the_return_of_the_fit_before():
    # fit(epochs=1) three times: each return waited 0.5 s; the second and third epochs own the first two returns
    epochs = [epoch(0, 3.0, fit_end=0.5), epoch(4, 1.0, fit_end=0.5), epoch(6, 1.0, fit_end=0.5)]
    assert tune_scripts.steady_rate(epochs) == pytest.approx(20 / 3.0)
    # two fits: 2 epochs, then 3; the second fit's first epoch owns the first fit's return, and retraces as it may
    epochs = [epoch(0, 3.0), epoch(3, 1.0, fit_end=0.25), epoch(5, 2.0), epoch(7, 1.0), epoch(8, 1.0, fit_end=9.0)]
    assert tune_scripts.steady_rate(epochs) == pytest.approx(40 / 5.25)
    # an epoch cut short before its end (an exception) is no figure; nothing measured: none
    assert tune_scripts.steady_rate([epoch(0, 3.0), {"begin": 3, "steps": 10}]) is None
    assert tune_scripts.steady_rate([]) is None


def test_the_whole_training_counts_the_time_between_fits_that_the_epochs_leave_out():
    # two fits: 2 epochs, then 3; between them 1.75 s outside any epoch (a model built and compiled, fit's set-up);
    # from the first epoch's end (3.0) to the last fit's return (8 + 1 + 9)
    epochs = [epoch(0, 3.0), epoch(3, 1.0, fit_end=0.25), epoch(6, 2.0), epoch(8, 1.0), epoch(9, 1.0, fit_end=0.5)]
    assert tune_scripts.training_span(epochs) == pytest.approx(10.5 - 3.0)
    assert tune_scripts.steady_rate(epochs, seconds=True) == pytest.approx(5.25)  # the epochs alone: 2.25 s less
    assert tune_scripts.training_span([epoch(0, 3.0, fit_end=0.5)]) is None  # one epoch: nothing after the first

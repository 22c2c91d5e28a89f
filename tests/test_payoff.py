"""A per-process choice must pay for its compile over the script's training (tuning/payoff.py): on injected figures."""

import pytest

import machines as m
from redline.tuning.payoff import process_once, start_s, unpaid
from redline.tuning.result import Candidate


def cand(name, rate, trace, extra=()):
    return Candidate(name, runs=[rate * f for f in (0.99, 1.0, 1.01)], passes=[rate],
                     detail={"trace_s": trace, "first_extra": list(extra)})


def test_a_start_costs_its_trace_and_its_first_epochs_extra_beyond_the_script_as_written_s():
    default, jax = cand("as written", 100.0, 2.0, [0.5, 0.7]), cand("backend jax", 150.0, 6.0, [1.5, None, 1.9])
    assert start_s(default) == pytest.approx(2.6) and start_s(jax) == pytest.approx(7.7)
    assert process_once(jax, default) == pytest.approx(5.1) and process_once(default, default) == 0.0
    assert process_once(default, jax) == 0.0  # never below 0
    assert process_once(Candidate("x", detail={}), default) == 0.0  # a figure missing: nothing said


@pytest.mark.parametrize("training_s, paid", [(10.0, False), (15.4, False), (17.7, False), (18.0, True),
                                               (300.0, True)])
def test_a_faster_process_whose_start_costs_more_than_it_saves_is_not_worth_it(training_s, paid):
    """1.5x epochs save a third of the training; the JAX start costs 5.1 s more. Paid where the run is at least
    MIN_GAIN faster, compile included: T / (T / 1.5 + 5.1) >= 1.05 from ~17.85 s of training (from ~15.3 s the
    saving outweighs the compile, a gain of less than 5%: Keras' training guide predicted 1.04x, delivered 0.96x)."""
    default, jax = cand("as written", 100.0, 2.0, [0.6]), cand("backend jax", 150.0, 6.0, [1.7])
    why = unpaid(jax, default, training_s)
    assert (why is None) == paid
    if why:
        assert "its start costs ~5.1 s more" in why and f"~{training_s / 3:,.1f} s of the script's" in why
        assert ("less than the 5% of the run a choice needs" in why) == (training_s / 3 > 5.1), why
    assert unpaid(jax, default, None) is None


@pytest.mark.parametrize("epochs, chosen", [(3, "as written"), (3000, "backend jax")])
def test_tune_keeps_the_script_as_written_where_another_backend_s_compile_outweighs_its_gain(monkeypatch, epochs,
                                                                                           chosen):
    from redline.cli.tune import text
    from redline.tuning import search

    def fake(script, args, c, trial, timeout, **_):
        jax = c.env.get("KERAS_BACKEND") == "jax"
        if "ladder" in trial:
            r = 300.0 if jax else 100.0
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [r] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": [], "trace_s": 9.0 if jax else 1.0}
        r = 300.0 if jax else 100.0 if c.name == "as written" else 50.0
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if jax else "tensorflow", "steps_in_epoch": 100, "epochs": epochs,
                "trace_s": 9.0 if jax else 1.0}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert result.chosen_process.name == chosen
    jax = next(p for p in result.processes if p.name == "backend jax")
    if chosen == "as written":  # 3 epochs of 100 steps: 3 s as written, 2 s saved, 8 s more to compile
        assert jax.dropped.startswith("not worth its process: its epochs ran 3.00x") and "~8.0 s more" in jax.dropped
        assert "not worth its process" in " ".join(text(result).split())  # (the table wraps its last column)
    else:  # 3,000 s of training: the compile is paid back, and the seconds a run saves count it
        assert not jax.dropped and result.start_cost() == pytest.approx(8.0)
        assert result.to_dict()["payback"]["saved_s"] == pytest.approx(3000 * (1 - 1 / result.ratio()) - 8.0, abs=0.1)


def test_a_rival_whose_start_no_gain_of_its_quiet_process_can_pay_for_is_not_measured_again(monkeypatch):
    """imbalanced_mlp: JAX 1.12x in its first process, its start 1.9 s dearer against ~4 s of training; a second
    process of it and one more of the script as written (17 s of an 80-s tune) came to the same verdict. Here JAX at
    3x, 8 s more compile, 3 s of training: one process of it decides, where its process ran on the machine as it was."""
    from redline.tuning import search
    from redline.tuning.payoff import cannot_pay

    calls = []

    def fake(script, args, c, trial, timeout, **_):
        jax = c.env.get("KERAS_BACKEND") == "jax"
        calls.append((c.name, "ladder" in trial))
        r = 300.0 if jax else 100.0 if c.name == "as written" else 50.0
        res = {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
               "backend": "jax" if jax else "tensorflow", "steps_in_epoch": 100, "epochs": 3,
               "trace_s": 9.0 if jax else 1.0, "contention": {"steal": 0.0, "others": 0.001}}
        return {**res, "inputs": {}, "not_measured": []} if "ladder" in trial else res

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(p for p in result.processes if p.name == "backend jax")
    assert result.chosen_process.name == "as written" and len(jax.passes) == 1, calls
    assert calls.count(("backend jax", False)) == 1 and ("backend jax", True) not in calls, calls
    assert jax.dropped.startswith("not worth its process: even at its fastest round") and "~8.0 s more" in jax.dropped
    # the bound is its best round against the script as written's worst: a gain that could still pay is measured on
    default, fast = cand("as written", 100.0, 1.0), cand("backend jax", 300.0, 9.0)
    assert cannot_pay(fast, default, 3.0) and cannot_pay(fast, default, 13.0) is None  # 2/3 of 13 s: 8.7 > 8
    assert cannot_pay(cand("backend jax", 90.0, 9.0), default, 3.0) is None  # no gain: the other rules say so


def folds(name, rate, trace, refit, retraces=3):
    c = cand(name, rate, trace, [0.2])
    c.detail.update(refit_s=refit, retraces=retraces)
    return c


def test_each_later_fit_that_traces_anew_pays_its_start_again_under_the_choice():
    """kfold_dataset: a fresh model per fold on tf.data; JAX ran its epochs 1.62x, but each of its 3 later folds
    started ~2.6 s against ~0.8 s as written, and the run delivered 0.82x `python`. Its first start alone (1.0 s more)
    looked paid by the ~1.6 s its epochs save of ~4.2 s of training."""
    from redline.tuning.payoff import cannot_pay, once_s

    default, jax = folds("as written", 100.0, 1.0, 0.8), folds("backend jax", 162.0, 2.0, 2.6)
    assert once_s(jax, default) == pytest.approx(1.0 + 3 * 1.8)
    assert unpaid(folds("backend jax", 162.0, 2.0, 2.6, 0), folds("as written", 100.0, 1.0, 0.8, 0), 4.2) is None
    why = unpaid(jax, default, 4.2)
    assert why and "~6.4 s more" in why and "each of its 3 later fit(s) that trace anew ~2.6 against ~0.8 s" in why
    assert cannot_pay(jax, default, 4.2) and unpaid(jax, default, 60.0) is None  # ~23 s saved of 60: paid
    assert once_s(folds("oneDNN off", 110.0, 1.0, 0.5), default) == 0.0  # cheaper later starts: never below 0
    assert once_s(default, default) == 0.0


def test_a_process_records_how_many_of_the_script_s_later_fits_trace_anew():
    from redline.tuning.absorb import absorb

    res = {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 101.0, 99.0]}},
           "fits": [{"traces": True}, {"traces": True, "start_s": 0.7}, {"traces": False}, {"traces": True,
                                                                                             "start_s": 0.9}]}
    c = Candidate("as written")
    absorb(c, res)
    assert c.detail["retraces"] == 2 and c.detail["refit_s"] == pytest.approx(0.8)
    absorb(c, {**res, "fits": res["fits"][:1]})  # a later process that stopped after the fit it measured
    assert c.detail["retraces"] == 2 and c.detail["refit_s"] == pytest.approx(0.8)


@pytest.mark.parametrize("epochs, least, chosen", [(3, None, "as written"), (30, None, "backend jax"),
                                                   (30, 3, "as written")])
def test_tune_keeps_the_script_as_written_where_another_backend_s_later_fits_start_dearer_than_it_saves(
        monkeypatch, epochs, least, chosen):
    """4 folds of fresh models, 3 epochs of 100 steps each (12 s as written): JAX's epochs 1.62x (~4.6 s saved), its
    first start 1 s dearer and each of its 3 later folds' 2.6 against 0.8 s (6.4 s in all): as written stays. At 30
    epochs a fold it pays; not where an EarlyStopping callback may end each fold after 3 (fits.least_epochs)."""
    from redline.tuning import search

    def fake(script, args, c, trial, timeout, **_):
        jax = c.env.get("KERAS_BACKEND") == "jax"
        r = 162.0 if jax else 100.0 if c.name == "as written" else 50.0
        fits = [{"index": i + 1, "epochs": epochs, "steps_in_epoch": 100, "fingerprint": "fold", "traces": True,
                 **({"least_epochs": least} if least else {}),
                 **({"start_s": 2.6 if jax else 0.8} if i else {})} for i in range(4)]
        res = {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
               "backend": "jax" if jax else "tensorflow", "steps_in_epoch": 100, "epochs": 3, "fits": fits,
               "trace_s": 2.0 if jax else 1.0, "contention": {"steal": 0.0, "others": 0.001}}
        return {**res, "inputs": {}, "not_measured": []} if "ladder" in trial else res

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(p for p in result.processes if p.name == "backend jax")
    assert result.chosen_process.name == chosen, [(p.name, p.dropped) for p in result.processes]
    if chosen == "as written":
        assert jax.dropped.startswith("not worth its process") and "each of its 3 later fit(s)" in jax.dropped, (
            jax.dropped)


def test_a_rival_whose_best_gain_cannot_repay_another_pass_is_not_worth_it():
    """1.22x at its best (120 against 98 steps/s): ~0.7 s saved of 4 s of training a run, where another pass of trial
    processes takes 16 s of tuning (22 runs to repay); on 400 s of training it repays that in under one."""
    from redline.tuning.payoff import REPAY_RUNS, not_worth_a_pass

    default = Candidate("as written", runs=[98.0, 100.0, 102.0])
    thread = Candidate("1 intra-op thread", runs=[110.0, 115.0, 120.0])
    why = not_worth_a_pass(thread, default, 4.0, 16.0)
    assert why and "(1.22x)" in why and "~0.7 s of the script's ~4 s" in why and "about 22 runs" in why, why
    assert not_worth_a_pass(thread, default, 400.0, 16.0) is None
    assert not_worth_a_pass(thread, default, None, 16.0) is None and not_worth_a_pass(thread, default, 4.0, 0.0) is None
    behind = Candidate("oneDNN off", runs=[90.0, 92.0, 95.0])  # no gain at its best: no number of runs repays a pass
    assert "no number of runs" in not_worth_a_pass(behind, default, 4.0, 16.0)
    assert REPAY_RUNS * 4.0 * (1 - 98 / 120) < 16.0  # (the figures above sit on the intended side of the rule)


@pytest.mark.parametrize("training_s, cut", [(4.0, True), (400.0, False)])
def test_the_passes_stop_measuring_a_rival_whose_gain_cannot_repay_them(training_s, cut):
    """The script's own backend, one thread: 1.15x within the noise, on a busy machine (so one process of each cannot
    decide it). On a 4-s training it is dropped after its first process; on 400 s it gets its next passes."""
    from redline.tuning.passes import process_stage

    busy = {"steal": 0.05, "others": 0.0}
    figures = {"as written": [98.0, 100.0, 102.0], "1 intra-op thread": [105.0, 115.0, 130.0]}
    calls = []

    def run(c, extra, timeout, ahead=None):
        calls.append(c.name)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": figures[c.name]}}, "contention": busy,
                "backend": "tensorflow"}

    from redline.tuning.absorb import absorb

    default = Candidate("as written")
    absorb(default, run(default, {}, 60.0))
    thread = Candidate("1 intra-op thread", env={"TF_NUM_INTRAOP_THREADS": "1"})
    process_stage(run, default, [thread], per_trial=8.0, left=lambda: 500.0, progress=lambda s: None,
                  training_s=training_s)
    assert (len(thread.passes) == 1) == cut and len(default.passes) == (1 if cut else 3), (calls, thread.dropped)
    if cut:
        assert thread.dropped.startswith("not worth another pass: even at its fastest round") and "(1.33x)" in (
            thread.dropped), thread.dropped
    else:
        assert not (thread.dropped or "").startswith("not worth another pass")


def test_a_run_that_never_imports_tensorflow_is_credited_the_import_the_script_as_written_pays():
    """transformer_block: JAX's epochs 1.64x over ~2 s of training, its step compiled in 2.2 s against TensorFlow's
    1.0; but a JAX run over numpy arrays never imports TensorFlow, which the script as written pays ~2.3 s for at its
    start. Counted, JAX's start costs nothing more; where the script imports it after all, it costs 1.2 s again."""
    from redline.tuning.payoff import tf_s, unpaid_at_end

    default, jax = cand("as written", 100.0, 1.0), cand("backend jax", 164.0, 2.2)
    assert process_once(jax, default) == pytest.approx(1.2) and unpaid(jax, default, 2.0)  # no import figures
    default.detail["tf_s"], jax.detail["tf_s"] = [2.2, 2.3, 2.4], [0.0]
    assert tf_s(default) == pytest.approx(2.3) and process_once(jax, default) == 0.0 and not unpaid(jax, default, 2.0)
    assert process_once(default, jax) == pytest.approx(1.1)  # TensorFlow where the script as written is on JAX
    assert process_once(cand("x", 1.0, 1.0), default) == 0.0  # no import figure: its compile alone
    # the whole script, run on to its end under JAX, imported it (a model saved after fit): the credit is gone
    why = unpaid_at_end(jax, default, {"status": "complete", "tf_s": 2.4}, {"status": "complete", "tf_s": 2.3}, 2.0)
    assert jax.detail["tf_end_s"] == 2.4 and process_once(jax, default) == pytest.approx(1.2), jax.detail
    assert why.startswith("not worth its process: its epochs ran 1.64x") and "~1.2 s more" in why, why
    assert "TensorFlow imported" not in why  # both pay one import: only the compiles differ
    # and where the script as written's figure read slower (its first trial imported beside a spare: 5.4 s), both
    # sides still pay one import, at the least figure: no credit is left over
    slow = cand("as written", 100.0, 1.0)
    slow.detail["tf_s"] = [5.4]
    assert process_once(jax, slow) == pytest.approx(1.2) and unpaid(jax, slow, 2.0)
    other = cand("jax", 164.0, 2.2)
    other.detail["tf_s"] = [0.0]  # an ending that says nothing of the import leaves the credit
    assert unpaid_at_end(other, default, {"status": "complete"}, {}, 2.0) is None and "tf_end_s" not in other.detail


@pytest.mark.parametrize("later, chosen", [(None, "backend jax"), ("follow", "as written"),
                                           ("completion", "as written")])
def test_tune_chooses_a_backend_whose_run_skips_tensorflow_s_import_unless_the_script_imports_it_after_fit(
        monkeypatch, later, chosen):
    """A JAX process that never imports TensorFlow pays for its dearer compile with the import it skips; where the
    rest of the script imports TensorFlow (seen after its measurement, or in its completion trial), it does not."""
    from redline.tuning import search

    modes = []

    def fake(script, args, c, trial, timeout, **_):
        jax = c.env.get("KERAS_BACKEND") == "jax"
        mode = trial.get("mode") or ("ladder" if "ladder" in trial else "follow" if trial.get("follow") else "first")
        modes.append((c.name, mode))
        tf = (2.4 if later else 0.0) if jax else 5.4  # as written's first trial imported beside a spare
        if mode == "complete":
            return {"status": "complete", "exit_code": 0, "tf_s": tf}
        if mode == "ladder":
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0] * 3, "knobs": {}}},
                    "inputs": {}, "not_measured": []}
        r = 164.0 if jax else 100.0 if c.name == "as written" else 50.0
        ending = {"status": "complete", "exit_code": 0, "tf_s": tf}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if jax else "tensorflow", "steps_in_epoch": 100, "epochs": 2,
                "trace_s": 2.2 if jax else 1.0, "tf_s": 0.0 if jax else 5.4,
                **({"after_fit": ending} if mode == "first" or later != "completion" else {})}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    jax = next(p for p in result.processes if p.name == "backend jax")
    assert result.chosen_process.name == chosen, (jax.dropped, result.reasons)
    assert (("backend jax", "complete") in modes) == (later == "completion"), modes
    if later:  # one import each, as a run pays it: the compiles alone differ (2.2 against 1.0 s)
        assert jax.dropped.startswith("not worth its process") and "~1.2 s more" in jax.dropped, jax.dropped

"""Deciding sooner: the per-process passes stop once nothing is left that another trial process could decide."""

import pytest

import machines as m
from redline.tuning.search import Candidate, settled

#: real trials of the rules below run on JAX, the backend that starts fastest here: the rules are the same on each
JAX = {"KERAS_BACKEND": "jax"}


def C(name, *passes, error=None):
    """A candidate measured in ``passes`` trial processes of three rounds each (given as their medians)."""
    runs = [r * f for r in passes for f in (0.99, 1.0, 1.01)]
    return Candidate(name, runs=runs, passes=list(passes), error=error)


def fake_trials(rates, seen, stage=100.0, **more):
    """A fake run_trial: per-process trials at ``rates[name]`` steps/s (a callable: the next figure each time; missing:
    50), the in-process stage's at ``stage``; ``seen(cand, trial)`` records each call; ``more`` joins every result."""

    def fake(script, args, cand, trial, timeout, **_):
        seen(cand, trial)
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [stage] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        r = rates.get(cand.name, 50.0)
        r = r() if callable(r) else r
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow", **more}

    return fake


def fake_processes(figures, calls, stage=100.0):
    """A fake run_trial: each per-process trial's rounds and the share of the machine it lost come from
    ``figures(name)`` -> (rounds, share or None: not available); the in-process stage at ``stage``; ``calls`` gets each
    trial's candidate name, or "in-process"."""

    def fake(script, args, cand, trial, timeout, **_):
        calls.append("in-process" if "ladder" in trial else cand.name)
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [stage] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        runs, lost = figures(cand.name)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": runs}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow",
                "contention": {"steal": lost, "others": None if lost is None else 0.0}}

    return fake


def test_a_candidate_decisively_behind_is_dropped_with_its_figures():
    default, slow = C("as written", 100.0), C("oneDNN off", 60.0)
    assert settled(default, [slow]) and "decisively behind" in slow.dropped and "60.0" in slow.dropped


def test_one_winner_ahead_in_two_processes_settles_it_but_not_in_one():
    default, fast = C("as written", 100.0), C("backend jax", 200.0)
    assert not settled(default, [fast])  # one process each: another pass still says something
    default, fast = C("as written", 100.0), C("backend jax", 200.0, 199.0)
    assert not settled(default, [fast])  # one process of the script as written may have run slow as a whole
    default, fast = C("as written", 100.0, 101.0), C("backend jax", 200.0, 199.0)
    assert settled(default, [fast]) and not fast.dropped
    default, fast = C("as written", 100.0), C("backend jax", 106.0, 104.0)
    assert not settled(default, [fast])  # not beyond the spread and MIN_GAIN: undecided


def test_two_winners_or_one_within_the_noise_need_more_passes():
    default = C("as written", 100.0, 101.0)
    assert not settled(default, [C("backend jax", 200.0, 199.0), C("1 intra-op thread", 150.0, 151.0)])
    assert not settled(default, [C("backend jax", 103.0, 102.0)])  # within MIN_GAIN: undecided
    assert settled(default, [C("backend torch", error="torch is not installed")])


def test_tune_stops_the_passes_once_settled_and_keeps_the_in_process_stage(monkeypatch):
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0, "oneDNN on": 50.0, "1 intra-op thread": 60.0}
    calls = []
    fake = fake_trials(rates, lambda cand, trial: calls.append("in-process" if "ladder" in trial else cand.name), 300.0)

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert result.chosen_process.name == "backend jax"
    # pass 1: all; then jax alone is ahead (the others were 0.5x-0.6x: dropped); the script as written gets its second
    # process, and jax's second is the in-process stage's trial, which measures it as a process would as well
    assert calls == ["as written", "backend jax", "oneDNN on", "1 intra-op thread", "as written", "in-process"], calls
    assert len(result.default.passes) == 2
    assert len(result.chosen_process.passes) == 2 and result.chosen_process.median == pytest.approx(300.0)
    assert any("the in-process stage's trial in it" in r for r in result.reasons), result.reasons


def test_a_lone_leader_not_ahead_in_its_second_process_is_dropped_and_the_stage_runs_in_the_new_choice(monkeypatch):
    from redline.tuning import search

    jax = iter([160.0, 100.0])  # its third process (after the stage's) reads it as the script as written too
    rates = {"as written": 100.0, "backend jax": lambda: next(jax)}
    calls = []

    def fake(script, args, cand, trial, timeout, **_):
        calls.append(("in-process " if "ladder" in trial else "") + cand.name)
        if "ladder" in trial:  # jax's second process reads it as the script as written
            assert trial.get("as_run") is (cand.name == "backend jax"), trial
            r = 100.0 if cand.name == "backend jax" else 100.0
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99], "knobs": {}}},
                    "inputs": {}, "not_measured": []}
        r = rates.get(cand.name, 40.0)
        r = r() if callable(r) else r
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert result.chosen_process.name == "as written", result.reasons
    # ahead (130 against 100) but within the noise after the stage's trial: a third process of each, then dropped
    assert calls[-4:] == ["in-process backend jax", "as written", "backend jax", "in-process as written"], calls
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert "not decisively ahead after 3 processes" in jax.dropped and len(jax.passes) == 3


@pytest.mark.parametrize("lead, speculated", [(1.3, False), (1.6, True)])
def test_only_a_large_lead_makes_the_leader_s_second_process_the_stage_s(monkeypatch, lead, speculated):
    """1 intra-op thread decisively ahead at 1.3x in its first process gets a plain second process (such leads fell
    back on a shared VM, and the stage then ran twice); at 1.6x its second is the in-process stage's trial."""
    from redline.tuning import search
    from redline.tuning.passes import LONE_LEAD

    assert 1.3 < LONE_LEAD <= 1.6
    rates = {"as written": 100.0, "1 intra-op thread": 100.0 * lead, "oneDNN on": 40.0, "backend jax": 45.0}
    calls = []
    fake = fake_trials(rates, lambda cand, trial: calls.append("in-process" if "ladder" in trial else cand.name),
                       100.0 * lead, contention={"steal": 0.01, "others": 0.0})
    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert r.chosen_process.name == "1 intra-op thread"
    assert calls.count("1 intra-op thread") == (1 if speculated else 2), calls
    assert any("the in-process stage's trial in it" in x for x in r.reasons) == speculated, r.reasons


def test_a_leader_ahead_within_the_noise_gets_a_plain_second_process_not_the_stage_s(monkeypatch):
    """JAX at 1.3x in its first process with a spread too wide to call it (a slow round): its second process is a plain
    one, so where it falls back the stage is not measured twice (once in it, once in the choice)."""
    from redline.tuning import search

    calls = []

    def fake(script, args, cand, trial, timeout, **_):
        calls.append(("in-process " if "ladder" in trial else "") + cand.name)
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 101.0, 99.0], "knobs": {}}},
                    "inputs": {}, "not_measured": []}
        runs = {"as written": [100.0, 101.0, 99.0], "backend jax": [130.0, 80.0, 131.0]}.get(cand.name, [40.0] * 3)
        if cand.name == "backend jax" and calls.count("backend jax") > 1:
            runs = [100.0, 100.5, 99.5]  # its second process: the script as written's rate
        return {"status": "ok", "candidates": {"default": {"steps_per_s": runs}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls[:4] == ["as written", "backend jax", "oneDNN on", "1 intra-op thread"], calls
    assert "in-process backend jax" not in calls and calls.count("backend jax") >= 2, calls
    assert calls[-1] == "in-process as written" and calls.count("in-process as written") == 1, calls
    assert result.chosen_process.name == "as written", result.reasons


def test_a_rival_far_behind_in_its_first_executions_stops_there_with_its_figure(monkeypatch):
    from redline.tuning import search

    bars = []

    def fake(script, args, cand, trial, timeout, **_):
        bars.append(trial.get("behind_below"))
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [1.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        if cand.name == "backend jax":  # what the harness reports where its warm-up ran under the bar
            return {"status": "ok", "candidates": {"default": {"behind": 0.1, "bar": trial["behind_below"]}},
                    "data": "ndarray", "backend": "jax"}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [1.0, 1.01, 0.99]}}, "data": "ndarray",
                "backend": "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert jax.dropped.startswith("decisively behind: 0.10") and not jax.runs and result.chosen_process is result.default
    assert bars[0] is None and set(bars[1:4]) == {search.BEHIND * 1.0}  # the script as written is never cut short


def test_the_trial_stops_a_rival_after_its_first_executions_where_it_runs_under_the_bar(tmp_path):
    import importlib.util

    import pytest

    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    from tune_helpers import TINY, script, trial
    from redline.tuning.search import run_trial

    s = script(tmp_path, TINY)
    res = run_trial(s, [], Candidate("x", JAX), {**trial({"default": {"own": True}}, seconds=1e-4), "behind_below": 1e12},
                    120)
    assert res["status"] == "ok", res
    default = res["candidates"]["default"]
    assert default["behind"] > 0 and default["bar"] == 1e12 and "steps_per_s" not in default


def test_a_budget_too_small_for_one_trial_is_one_line_that_says_what_to_give(monkeypatch):
    import pytest

    from redline.tuning import search

    monkeypatch.setattr(search, "run_trial", lambda *a, **k: {"status": "timeout", "error": "no result within 28 s"})
    with pytest.raises(search.ScriptProblem, match=r"--budget 30 s is too small for even one trial.*give --budget \d+"):
        search.tune("train.py", budget_s=30, snapshot=m.vm_2core())


def test_the_completion_check_reuses_how_the_first_trial_ended():
    from redline.tuning.confirm import confirm

    default, jax = Candidate("as written"), Candidate("backend jax")
    ran = []

    def run(c):
        ran.append(c.name)
        return {"status": "complete", "exit_code": 0}

    best, reasons, unchecked = confirm(default, [jax], jax, run=run, pick=lambda cs: default, time_left=lambda: 100.0,
                                       per_trial=10.0, reference={"status": "complete", "exit_code": 0})
    assert best is jax and ran == ["backend jax"] and not unchecked  # the script as written was not run again
    ran.clear()
    best, _, _ = confirm(default, [jax], jax, run=run, pick=lambda cs: default, time_left=lambda: 100.0, per_trial=10.0)
    assert ran == ["as written", "backend jax"]


@pytest.mark.parametrize("ending, kept", [({"status": "complete", "exit_code": 0}, True),
                                          ({"status": "incomplete", "error": "NotImplementedError", "where": "t.py:9"},
                                           False)])
def test_a_choice_whose_own_trial_ran_the_script_to_its_end_is_checked_with_no_budget_left(ending, kept):
    """--budget auto (30 s) on an MLP: JAX at 5.3x, its own trial process had run the rest of the script cut short,
    and with 8 s left the choice was "kept unchecked". How it ended is known: it is the check, at no cost."""
    from redline.tuning.confirm import confirm

    default, jax = Candidate("as written"), Candidate("backend jax")
    ran = []
    best, reasons, unchecked = confirm(
        default, [jax], jax, run=lambda c: ran.append(c.name) or {}, pick=lambda cs: default, time_left=lambda: 8.0,
        per_trial=10.0, reference={"status": "complete", "exit_code": 0}, ended={"backend jax": ending})
    assert ran == [] and not unchecked, unchecked
    assert (best is jax) == kept and (jax.error is None) == kept, reasons


FAILS_AFTER_FIT = {"status": "incomplete", "error": "FileNotFoundError: [Errno 2] No such file or directory: "
                   "'results/summary.txt'", "where": "train.py:10"}


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("env", [{"KERAS_BACKEND": "jax"}, {"TF_ENABLE_ONEDNN_OPTS": "0"}])
def test_where_the_script_as_written_fails_after_fit_it_stays_and_tune_says_so(known, env):
    """A script writing its results into a folder that is not there after fit: JAX was kept because it failed the same
    way. Nothing can show that a choice finishes where the script finishes: the script as written stays, the reason
    names the exception and the line, and no budget is spent on the candidate's check."""
    from redline.tuning.confirm import confirm

    default, rival = Candidate("as written"), Candidate("the rival", env)
    ran = []
    best, reasons, unchecked = confirm(default, [rival], rival, run=lambda c: ran.append(c.name) or FAILS_AFTER_FIT,
                                       pick=lambda cs: default, time_left=lambda: 100.0 if not known else 0.0,
                                       per_trial=10.0, reference=FAILS_AFTER_FIT if known else None)
    assert best is default and not unchecked and rival.error is None, (reasons, unchecked)
    assert ran == ([] if known else ["as written"])
    assert len(reasons) == 1 and "the script as written fails after fit" in reasons[0] and "train.py:10" in reasons[0]
    assert "FileNotFoundError" in reasons[0] and "the script as written stays" in reasons[0]


def test_a_candidate_that_fails_where_the_script_as_written_finishes_is_dropped_with_its_line():
    from redline.tuning.confirm import confirm

    default, jax = Candidate("as written"), Candidate("backend jax", {"KERAS_BACKEND": "jax"})
    best, reasons, _ = confirm(default, [jax], jax, run=lambda c: FAILS_AFTER_FIT, pick=lambda cs: default,
                               time_left=lambda: 100.0, per_trial=10.0, reference={"status": "complete", "exit_code": 0})
    assert best is default and "train.py:10" in jax.error and "backend jax dropped" in reasons[0], reasons


@pytest.mark.parametrize("env, kept", [({"KERAS_BACKEND": "jax"}, False), ({"TF_ENABLE_ONEDNN_OPTS": "0"}, True)])
def test_with_no_ending_of_the_script_to_compare_another_backend_is_not_kept(env, kept):
    from redline.tuning.confirm import confirm

    default, best = Candidate("as written"), Candidate("the rival", env)
    best_, _, unchecked = confirm(default, [best], best, run=lambda c: pytest.fail("nothing to compare with"),
                                  pick=lambda cs: default, time_left=lambda: 100.0, per_trial=10.0,
                                  reference={"status": "timeout", "error": "no result within 20 s"})
    assert (best_ is best) == kept and "no ending to compare with" in unchecked[0], unchecked


@pytest.mark.parametrize("env, kept", [({"KERAS_BACKEND": "jax"}, False), ({"TF_ENABLE_ONEDNN_OPTS": "0"}, True)])
def test_another_backend_is_never_kept_unchecked_where_no_budget_is_left_for_its_check(env, kept):
    """A script with TensorFlow-only code after fit must never get a backend that breaks it: with no time left to
    check it, the script as written stays (as it does for a later candidate); a oneDNN switch, which cannot break
    the code after fit, is still kept, said unchecked."""
    from redline.tuning.confirm import confirm

    default, best = Candidate("as written"), Candidate("the rival", env)
    best_, reasons, unchecked = confirm(
        default, [best], best, run=lambda c: pytest.fail("no time for a completion trial"), pick=lambda cs: default,
        time_left=lambda: 3.0, per_trial=10.0, reference={"status": "complete", "exit_code": 0})
    assert (best_ is best) == kept and len(unchecked) == 1, (best_, unchecked)
    assert ("(the choice is kept unchecked)" in unchecked[0]) == kept and ("script as written stays" in unchecked[0]) != kept


def test_one_slowed_round_among_many_does_not_make_a_clear_gain_look_like_noise():
    """Measured on imbalanced_mlp (Zen 4): the script as written's 9 rounds at 40-49 steps/s and one at 21.6; JAX's
    three processes all above as written's best."""
    from redline.tuning.compare import robust_spread, spread
    from redline.tuning.search import better

    written = Candidate("as written", runs=[49.293, 49.117, 49.106, 21.588, 40.132, 40.042, 46.023, 47.533, 46.74],
                        passes=[49.117, 40.042, 46.74])
    jax = Candidate("backend jax", runs=[67.175, 72.494, 68.647, 59.263, 72.676, 51.982, 65.593, 69.103, 68.393],
                    passes=[68.647, 59.263, 68.393])
    assert spread(written.runs) > 0.5 and robust_spread(written.runs) < 0.25
    assert better(jax, written)
    assert robust_spread([1.0, 2.0, 3.0]) == spread([1.0, 2.0, 3.0])  # few rounds: nothing left out
    # a gain inside the spread of the rounds that remain is still not taken
    assert not better(Candidate("c", runs=[52.0, 53.0, 51.0, 54.0, 50.0, 52.5], passes=[52.0, 52.5]), written)


def test_a_rival_within_the_noise_of_the_default_but_far_behind_the_winner_is_settled():
    default = C("as written", 100.0, 101.0)
    jax, onednn = C("backend jax", 150.0, 151.0), C("oneDNN off", 99.0, 102.0)
    assert settled(default, [jax, onednn]) and "behind 'backend jax'" in onednn.dropped and not jax.dropped
    assert not settled(C("as written", 100.0, 101.0), [C("oneDNN off", 99.0, 102.0)])  # no winner: still undecided


def test_fast_steps_are_judged_against_the_bar_on_a_run_long_enough_to_time_not_on_three_warm_executions(tmp_path):
    import importlib.util

    import pytest

    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    from tune_helpers import TINY, script, trial
    from redline.tuning.search import run_trial

    # a bar no rate reaches, but steps of milliseconds: three say nothing against 0.25 s (seconds / 6), so the judgement
    # waits for the first run sized to time them (at least seconds / 3), and then drops it with that figure
    res = run_trial(script(tmp_path, TINY), [], Candidate("x", JAX),
                    {**trial({"default": {"own": True}}, seconds=1.5), "behind_below": 1e12}, 120)
    behind = res["candidates"]["default"]
    assert res["status"] == "ok" and 0 < behind["behind"] < 1e12 and behind["took_s"] >= 1.5 / 6, behind
    assert "steps_per_s" not in behind


def test_a_candidate_s_own_trial_runs_the_rest_of_the_script_so_no_completion_trial_of_its_own_is_needed(monkeypatch):
    from redline.tuning import search

    modes = []

    def fake(script, args, cand, trial, timeout, **_):
        modes.append((cand.name, trial.get("mode") or ("follow" if trial.get("follow") else "first" if trial.get("discover")
                                                        else "in-process")))
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [300.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        r = {"as written": 100.0, "backend jax": 300.0}.get(cand.name, 50.0)
        ending = {"status": "complete", "exit_code": 0} if cand.name != "oneDNN on" else {
            "status": "incomplete", "error": "RuntimeError: no", "where": "train.py:9"}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow", "after_fit": ending}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_process.name == "backend jax"
    assert ("as written", "first") in modes and all(mode != "complete" for _, mode in modes), modes
    assert all(mode == "follow" for name, mode in modes[1:] if mode not in ("in-process",)), modes
    assert any("finishes under it" in r for r in result.reasons), result.reasons


def timed_trials(monkeypatch, seconds):
    """Trials on a fake clock, every candidate at the same rate: trial process n (from 1) takes ``seconds(n)``."""
    from redline.tuning import search

    clock = {"t": 0.0, "calls": 0}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])

    def fake(script, args, cand, trial, timeout, **_):
        clock["calls"] += 1
        clock["t"] += seconds(clock["calls"])
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [1.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [1.0, 1.01, 0.99]}}, "data": "ndarray",
                "backend": "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    return clock


def test_a_budget_too_small_to_decide_every_candidate_is_said_before_the_trials_with_the_budget_that_would(monkeypatch):
    from redline.tuning import search, sizing

    clock = timed_trials(monkeypatch, lambda n: 40.0)  # every trial process takes 40 s of the (fake) clock
    said = []
    result = search.tune("train.py", budget_s=120, snapshot=m.vm_2core(), complete=False, progress=said.append)
    line = next((s for s in said if "needs about" in s), None)
    assert line and "--budget" in line and line in result.reasons, said
    needed = int(line.split("--budget ")[1].split()[0])
    assert needed >= 40 + sizing.needed_s(40.0, 3) and needed % 10 == 0  # jax, oneDNN, 1 thread: 3 candidates
    # where no rival leads, no second processes: two trial processes less (fine_tune: "about 352 s", 221 s taken)
    low = int(line.split("needs about ")[1].split()[0].replace(",", ""))
    assert needed - low >= 2 * 40 and "where no rival leads" in line, line
    # a one-second step: the in-process stage's ladder alone runs spe 2, 4 and 8 in 2 executions, 3 rounds and a
    # calibration each: minutes, not the two trial processes of millisecond steps
    assert needed >= 40 + sizing.needed_s(40.0, 3, sizing.stage_s(40.0, 1.0, None, 0.8))
    assert sizing.stage_s(40.0, 1.0, 10, 0.8) >= 40 + 4 * 2 * (2 + 4 + 8) > sizing.stage_s(40.0, 0.001, 10, 0.8)
    # a trace of 8 s (a fifth of the trial process): the ladder starts at 8, so the stage is shorter than with a
    # trace of 4.8 s that measures spe 2 as well
    assert sizing.stage_s(40.0, 1.0, 10, 0.8) - 40 < sizing.stage_s(24.0, 1.0, 10, 0.8) - 24
    # where the first trial's figures leave steps_per_execution nothing to gain (spe_bound), no ladder is counted:
    # one-second steps then cost the stage the input path and 3 rounds of the script's own and jit, no spe 8 runs
    no_ladder = sizing.stage_s(40.0, 1.0, 10, 0.8, with_ladder=False)
    assert no_ladder == pytest.approx(sizing.stage_s(40.0, 1.0, 10, 0.8) - (8 + 4 * 2 * 8))  # spe 8: its trace, its
    # calibration and 3 rounds of 2 executions of 8 one-second steps
    said.clear()
    clock["t"] = 0.0
    search.tune("train.py", budget_s=needed + 10, snapshot=m.vm_2core(), complete=False, progress=said.append)
    assert not any("needs about" in s for s in said), said


def test_a_forecast_that_every_candidate_was_decided_against_is_said_as_such_not_as_advice(monkeypatch):
    """xception_scratch at 64x64: "deciding every candidate needs about 282 s ... give --budget 360", said before the
    trials, stood in the result of a tune that decided every candidate in 173 s of 180. Where nothing is left not
    measured, the result says the forecast and what it took instead; where something is, the advice stays."""
    from redline.tuning import search

    timed_trials(monkeypatch, lambda n: 40.0 if n == 1 else 1.0)  # the first trial takes 40 s, the rest 1 s each
    # (rivals dropped early, the stage's rewrites and ladder bounded)
    said = []
    result = search.tune("train.py", budget_s=120, snapshot=m.vm_2core(), complete=False, progress=said.append)
    assert any("needs about" in s for s in said), said  # the forecast, before the trials
    forecast = next(s for s in said if "needs about" in s)  # and its figure in the result (`run --tune` names it)
    assert f"needs about {result.needs_s:,.0f} s here where no rival leads" in forecast, (result.needs_s, forecast)
    assert not result.not_measured, result.not_measured
    assert not any("needs about" in r for r in result.reasons), result.reasons
    line = next((r for r in result.reasons if r.startswith("every candidate was decided in ")), None)
    assert line and "forecast about" in line, result.reasons


def test_the_behind_bar_is_half_the_fastest_rate_measured_so_far_not_only_the_script_as_written_s():
    from redline.tuning.passes import BEHIND, bar

    default, jax = C("as written", 100.0), C("backend jax", 400.0)
    slowed = Candidate("oneDNN off", train_runs=[30.0], dropped="decisively behind: 30.00 training steps/s ...")
    assert bar(default, []) == pytest.approx(BEHIND * 100.0)
    assert bar(default, [jax, slowed]) == pytest.approx(BEHIND * 400.0)  # a TensorFlow setting under 200 cannot win
    assert bar(default, [C("backend torch", error="torch is not installed")]) == pytest.approx(BEHIND * 100.0)


def test_a_backend_the_script_pins_itself_is_measured_in_one_process_and_never_sets_the_bar(monkeypatch):
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0, "oneDNN on": 90.0, "1 intra-op thread": 60.0}
    calls, bars = [], []

    def seen(cand, trial):
        calls.append("in-process" if "ladder" in trial else cand.name)
        bars.append(trial.get("behind_below"))

    fake = fake_trials(rates, seen, pinned_backend="tensorflow", pinned_at="train.py:3")

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert jax.advice and len(jax.passes) == 1, jax  # advice only: one process shows its figure
    assert calls.count("backend jax") == 1, calls
    assert result.chosen_process.name == "as written"
    assert any("backend jax" in a and "3.00x" in a for a in result.advice), result.advice
    # the bar the TensorFlow settings were held to: half of the script as written's rate, not of JAX's (advice only)
    assert max(b for b in bars if b) == pytest.approx(50.0), bars
    # oneDNN on at 0.9x is not pruned against JAX's figure: it is decided against the script as written
    onednn = next(c for c in result.processes if c.name.startswith("oneDNN"))
    assert "backend jax" not in (onednn.dropped or ""), onednn.dropped


def test_a_rival_that_will_not_be_measured_again_is_spared_its_loss_check_and_the_rest_of_the_script(tmp_path):
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    from tune_helpers import TINY, script, trial
    from redline.tuning.search import run_trial

    s = script(tmp_path, TINY)
    base = {**trial({"default": {"own": True}}, seconds=0.05), "as_run": True, "check": True, "follow": True}
    x = Candidate("x", JAX)
    kept = run_trial(s, [], x, {**base, "prune_below": 1e-6}, 120)  # ahead of the prune: all of it
    assert kept["status"] == "ok" and "pruned" not in kept and "loss" in kept["check"], kept
    assert kept["after_fit"]["status"] == "complete", kept["after_fit"]
    cut = run_trial(s, [], x, {**base, "prune_below": 1e12}, 120)
    assert cut["status"] == "ok" and cut["pruned"] and cut["as_run"]["steps_per_s"], cut  # its figure stands
    # how much of the machine its measurement did not have: shares of the machine's CPU time (None: not available)
    assert set(cut["contention"]) == {"steal", "others"}, cut
    assert all(v is None or 0.0 <= v <= 1.0 for v in cut["contention"].values()), cut
    assert "check" not in cut and "after_fit" not in cut, cut
    # no gain in its training steps (a rival on the script's own backend): not measured whole either
    steps = run_trial(s, [], x, {**base, "prune_train_below": 1e12}, 120)
    assert steps["status"] == "ok" and steps["pruned"] and steps["candidates"]["default"]["steps_per_s"], steps
    assert "as_run" not in steps and "check" not in steps and "after_fit" not in steps, steps


def test_pass_one_tells_each_rival_the_prune_and_an_advice_only_one_needs_no_check_or_ending(monkeypatch):
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0, "oneDNN on": 115.0, "1 intra-op thread": 60.0}
    extras = {}
    fake = fake_trials(rates, lambda cand, trial: extras.setdefault(cand.name, []).append(
        {k: trial.get(k) for k in ("prune_below", "follow", "check", "prune_train_below")}), pinned_backend="tensorflow",
        pinned_at="train.py:3")

    monkeypatch.setattr(search, "run_trial", fake)
    search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    # the prune: PRUNE x the best so far (the advice's figure not counted), or no gain over the script as written;
    # in training steps as well for a rival on the script's own backend, never for another backend
    assert extras["backend jax"][0] == {"prune_below": pytest.approx(105.0), "follow": False, "check": False,
                                        "prune_train_below": None}
    assert extras["oneDNN on"][0] == {"prune_below": pytest.approx(105.0), "follow": True, "check": True,
                                      "prune_train_below": pytest.approx(105.0)}
    assert len(extras["oneDNN on"]) >= 2  # ahead in its first process: measured again
    assert all(e["prune_below"] is None and e["prune_train_below"] is None for e in extras["oneDNN on"][1:])  # later
    # passes: no prune, every figure kept


def test_a_rival_on_the_script_s_backend_is_pruned_on_its_steps_under_the_leader_s_prune(monkeypatch):
    """JAX leads at 300 in whole epochs; the script as written runs 120 training steps/s and 100 whole. A TensorFlow
    setting is not timed whole where its steps stay under the prune (0.8 x 300) scaled as the script's are: 288."""
    from redline.tuning import search

    seen, overheads = {}, {}

    def fake(script, args, cand, trial, timeout, **_):
        seen.setdefault(cand.name, []).append(trial.get("prune_train_below"))
        overheads.setdefault(cand.name, []).append(trial.get("epoch_overhead_s"))
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [300.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        jax = cand.env.get("KERAS_BACKEND") == "jax"
        train, whole = (300.0, 300.0) if jax else (120.0, 100.0)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [train] * 3}}, "data": "ndarray",
                "steps_in_epoch": 100, "backend": "jax" if jax else "tensorflow",
                "as_run": {"mode": "epochs", "steps_per_s": [whole, whole * 1.01, whole * 0.99], "overhead_s": 0.1}}

    monkeypatch.setattr(search, "run_trial", fake)
    search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert seen["backend jax"][0] is None  # another backend: always timed whole
    assert seen["oneDNN on"][0] == pytest.approx(0.8 * 300 * 120 / 100)
    # each rival is told the script as written's epoch overhead (tuning/first_look.py takes it off a first execution)
    assert overheads["as written"][0] is None and overheads["backend jax"][0] == pytest.approx(0.1), overheads


@pytest.mark.parametrize("steal, processes", [(0.01, 1), (0.12, 2), (None, 2)])
def test_one_process_of_the_script_as_written_stands_where_it_ran_on_the_machine_as_it_was(monkeypatch, steal,
                                                                                             processes):
    """A lone leader beats the script as written's one process where that process lost little of the machine (steal
    and other processes over its measurement); where it lost more, or the share is not available, a second process of
    the script as written comes first (a whole process can run slow)."""
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 200.0, "oneDNN on": 40.0, "1 intra-op thread": 45.0}
    calls = []
    fake = fake_trials(rates, lambda cand, trial: calls.append("in-process" if "ladder" in trial else cand.name),
                       200.0, contention={"steal": steal, "others": 0.01 if steal is not None else None})
    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("as written") == processes, calls
    assert r.chosen_process.name == "backend jax"
    assert any(x.startswith("one process of the script as written stands") for x in r.reasons) == (processes == 1)
    assert any(x.startswith("a second process of the script as written before a winner") and
               ("lost 13.0%" if steal else "could not tell") in x for x in r.reasons) == (processes == 2)


@pytest.mark.parametrize("stage_rate, processes", [(170.0, 1), (115.0, 2)])
def test_one_quiet_process_of_the_script_as_written_stands_only_while_the_lone_lead_holds(monkeypatch, stage_rate,
                                                                                           processes):
    """A lone leader at 1.6x in its first process spares the quiet script as written its second; where the leader's
    second process (the in-process stage's trial) reads it at 1.15x, the two processes of it lead by under LONE_LEAD
    and the script as written gets its second process before anything is chosen (custom_train_step: oneDNN off at
    1.55x, then 1.20x; its one process of the script as written read 674 steps/s, `python` 757-995)."""
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 160.0, "oneDNN on": 40.0, "1 intra-op thread": 45.0}
    calls = []
    fake = fake_trials(rates, lambda cand, trial: calls.append("in-process" if "ladder" in trial else cand.name),
                       stage_rate, contention={"steal": 0.01, "others": 0.0})
    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("as written") == processes, calls
    assert calls[calls.index("in-process") + 1:][:1] == (["as written"] if processes == 2 else []), calls
    said = [x for x in r.reasons if x.startswith("a second process of the script as written: 'backend jax' led it")]
    assert len(said) == processes - 1, r.reasons
    if said:
        assert "1.60x in its first process, 1.38x over its two" in said[0], said
    assert len(r.default.passes) == processes


def test_a_rival_with_no_gain_after_its_second_process_is_not_measured_a_third_time(monkeypatch):
    """Ahead within the noise in its first process (1.10x where the script as written's rounds spread 60%), level in
    its second: its two processes decide."""
    from redline.tuning import search

    rival = iter([110.0, 95.0, 120.0])
    calls = []

    def figures(name):
        if name == "oneDNN on":
            r = next(rival)
            return [r, r * 1.01, r * 0.99], None
        return ([100.0, 70.0, 130.0] if name == "as written" else [40.0] * 3), None

    monkeypatch.setattr(search, "run_trial", fake_processes(figures, calls))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("oneDNN on") == 2, calls
    c = next(c for c in r.processes if c.name == "oneDNN on")
    assert c.dropped.startswith("no gain in 2 trial processes"), c.dropped
    assert r.chosen_process.name == "as written"


@pytest.mark.parametrize("rival_lost, processes", [(0.01, 1), (0.2, 3), (None, 3)])
def test_a_rival_ahead_within_the_noise_where_both_ran_quiet_is_not_measured_again(monkeypatch, rival_lost, processes):
    """1.25x the script as written, whose rounds spread 40%: within the noise. Where both processes ran on the machine
    as it was, more processes would only average over processes that ran slow as a whole: none did. Otherwise the
    passes go on."""
    from redline.tuning import search

    calls = []
    figures = {"as written": ([100.0, 80.0, 120.0], 0.01), "oneDNN on": ([125.0, 126.0, 124.0], rival_lost)}
    monkeypatch.setattr(search, "run_trial", fake_processes(lambda name: figures.get(name, ([40.0] * 3, 0.01)), calls))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("oneDNN on") == processes, calls
    c = next(c for c in r.processes if c.name == "oneDNN on")
    assert (c.dropped or "").startswith("not ahead beyond the noise") == (processes == 1), c.dropped


@pytest.mark.parametrize("third_quiet", [True, False])
def test_a_quiet_leader_is_compared_with_a_quiet_process_of_the_script_as_written(monkeypatch, third_quiet):
    """cnn_augment: the script as written's two processes lost 4-15% of the machine and read 38-40 steps/s; a rival's
    two quiet ones read 78-80 and it was chosen at 2.03x, delivered 1.15x. A third process of the script as written
    comes first; where it runs quiet (70), the two are compared on quiet processes and the rival is not ahead beyond
    the noise. Where it does not, the choice rests on every process, as before."""
    from redline.tuning import search

    written = iter([(38.0, 0.10), (39.0, 0.15), (70.0, 0.01) if third_quiet else (40.0, 0.12), (70.0, 0.01)])
    calls = []

    def figures(name):
        r, lost = next(written) if name == "as written" else (80.0, 0.01) if name == "1 intra-op thread" else (30.0, 0.01)
        return [r, r * 1.1, r * 0.9], lost  # its rounds spread 20% (cnn_augment's 27%): 80 against 70 is within it

    monkeypatch.setattr(search, "run_trial", fake_processes(figures, calls, stage=80.0))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("as written") == 3, calls
    assert any(x.startswith("another process of the script as written") for x in r.reasons), r.reasons
    if third_quiet:
        assert r.chosen_process.name == "as written", r.reasons
        assert r.ratio() == 1.0
    else:
        assert r.chosen_process.name == "1 intra-op thread", r.reasons
        assert r.ratio() == pytest.approx(80.0 / 39.0, rel=0.02)


def test_a_leader_far_beyond_what_a_busy_process_loses_needs_no_quiet_process_of_the_script_as_written(monkeypatch):
    """tabular_mlp: JAX at 5.3x in quiet processes, the script as written's two busy; a third process of the script as
    written (12 s of a 65-s tune) changed nothing. At 4x no share of the machine lost explains the lead."""
    from redline.tuning import search

    calls = []

    def figures(name):
        r, lost = (20.0, 0.10) if name == "as written" else (80.0, 0.01) if name == "1 intra-op thread" else (10.0, 0.01)
        return [r, r * 1.02, r * 0.98], lost

    monkeypatch.setattr(search, "run_trial", fake_processes(figures, calls, stage=80.0))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls.count("as written") == 2, calls
    assert not any(x.startswith("another process of the script as written") for x in r.reasons), r.reasons
    assert r.chosen_process.name == "1 intra-op thread", r.reasons


@pytest.mark.parametrize("jax_lost, second, chosen", [(0.11, 160.0, "backend jax"), (0.11, 96.0, "as written"),
                                                       (0.01, 160.0, "as written"), (None, 160.0, "as written")])
def test_another_backend_with_no_gain_in_a_process_that_lost_more_of_the_machine_gets_a_second(monkeypatch, jax_lost,
                                                                                                second, chosen):
    """imbalanced_mlp: JAX read no gain (0.95x) in a process that lost 11% of the machine, the script as written's 1%;
    its whole runs were 1.78x. That process may have run slow as a whole: a second decides. Where it ran as quiet as
    the script as written, or its share is not known, no gain in it drops it, as on the script's own backend."""
    from redline.tuning import search

    jax = iter([(95.0, jax_lost), (second, 0.01)])
    calls = []

    def figures(name):
        r, lost = (next(jax) if name == "backend jax" else (100.0, 0.01) if name == "as written"
                   else (95.0, 0.11) if name == "oneDNN on" else (40.0, 0.01))
        return [r, r * 1.01, r * 0.99], lost

    monkeypatch.setattr(search, "run_trial", fake_processes(figures, calls, stage=second))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert r.chosen_process.name == chosen, r.reasons
    assert calls.count("oneDNN on") == 1, calls  # the script's own backend: no gain in its first process drops it
    again = jax_lost == 0.11
    assert calls.count("backend jax") == 1 + again, calls
    c = next(c for c in r.processes if c.name == "backend jax")
    assert any(x.startswith("a second process of 'backend jax'") for x in r.reasons) == again, r.reasons
    if chosen == "as written":
        assert c.dropped.startswith("no gain in " + ("2 trial processes" if again else "its first")), c.dropped


@pytest.mark.parametrize("first, second, chosen", [([85.0, 92.0, 150.0], 160.0, "backend jax"),
                                                   ([85.0, 92.0, 150.0], 95.0, "as written"),
                                                   ([80.0, 108.0, 176.0], 160.0, "backend jax"),  # ahead, not beyond
                                                   ([90.0, 92.0, 94.0], 160.0, "as written")])
def test_another_backend_whose_rounds_spread_past_a_gain_gets_a_second_process(monkeypatch, first, second, chosen):
    """backup (a tf.data MLP): JAX's one process read 0.86x on its median, its rounds 213-347 against 258 as written;
    whole, it ran 1.36x. Rounds that reach past a gain cannot call it no gain: a second process decides. Rounds that
    stay under it (90-94 against 100) drop it, as on the script's own backend, whose rounds spread the same way. Ahead
    on its median but not beyond its spread (backup again: 1.08x, spread 76%) is no more decided: a second process."""
    from redline.tuning import search

    import itertools

    jax = itertools.chain([first], itertools.repeat([second, second * 1.01, second * 0.99]))
    calls = []

    def figures(name):
        runs = (next(jax) if name == "backend jax" else [100.0, 101.0, 99.0] if name == "as written"
                else [85.0, 92.0, 150.0] if name == "oneDNN on" else [40.0, 40.4, 39.6])
        return runs, 0.01

    monkeypatch.setattr(search, "run_trial", fake_processes(figures, calls, stage=second))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert r.chosen_process.name == chosen, r.reasons
    assert calls.count("oneDNN on") == 1, calls  # the script's own backend: no gain in its first process drops it
    again = max(first) > 105.0
    assert calls.count("backend jax") >= 1 + again and (again or calls.count("backend jax") == 1), calls
    assert any(x.startswith("a second process of 'backend jax'") and f"{max(first):,.1f}" in x for x in r.reasons) == again


def test_a_rival_with_no_gain_in_its_first_process_is_not_measured_again(monkeypatch):
    """A rival within noise of the script as written cannot become decisively ahead: its first process decides."""
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 103.0, "oneDNN on": 97.0, "1 intra-op thread": 104.0}
    calls = {}
    fake = fake_trials(rates, lambda cand, trial: calls.__setitem__(cand.name, calls.get(cand.name, 0) + 1))
    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    for name in ("backend jax", "oneDNN on", "1 intra-op thread"):
        assert calls[name] == 1, calls
        c = next(c for c in r.processes if c.name == name)
        assert c.dropped.startswith("no gain in its first trial process"), c.dropped
    assert r.chosen_process.name == "as written"


def test_a_leader_ahead_only_of_one_slow_process_of_the_script_as_written_is_not_chosen(monkeypatch):
    """One process of the script as written ran slow as a whole (37 steps/s where its others ran 65-88): its second
    process is measured before a winner is declared, and the leader is then within the noise."""
    from redline.tuning import search

    written = iter([50.0, 100.0, 101.0, 99.0])
    rates = {"as written": lambda: next(written), "backend jax": 20.0, "oneDNN on": 30.0, "1 intra-op thread": 100.0}
    calls = []
    follows = []
    fake = fake_trials(rates, lambda cand, trial: (calls.append("in-process" if "ladder" in trial else cand.name),
                                                   follows.append((cand.name, trial.get("follow")))))

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert calls[:5] == ["as written", "backend jax", "oneDNN on", "1 intra-op thread", "as written"], calls
    assert result.chosen_process.name == "as written", result.reasons
    assert len(result.default.passes) >= 2
    # how the script as written ends is known from its first trial (which runs the rest of the script): its later
    # processes stop after their measurements
    assert follows[4] == ("as written", False) and follows[3] == ("1 intra-op thread", True), follows


def test_a_rival_under_the_bar_gets_a_second_run_before_it_is_out_unless_its_run_was_long():
    """Injected timings: JAX's first executions after its trace ran 24 steps/s where it settled at 50, under half of
    TensorFlow's 53 (bar 26.5); on imbalanced_mlp, a first run that compiled for the epoch's last batch read 10.7."""
    from redline.tuning.compare import behind

    calls = []

    def again(rate):
        return lambda: calls.append(rate) or (rate, 0.3)

    assert behind(24.0, 0.3, 26.5, 0.8, again(50.0)) == (50.0, 0.3, False) and calls == [50.0]  # settled: in
    calls.clear()
    assert behind(24.0, 0.3, 26.5, 0.8, again(25.0))[2] and calls == [25.0]  # twice under: out, on the better
    calls.clear()
    assert behind(5.0, 0.3, 26.5, 0.8, again(5.5)) == (5.5, 0.3, True) and calls == [5.5]  # far under, twice: out
    calls.clear()
    # imbalanced_mlp: 18 steps that crossed the epoch's last, smaller batch and compiled for it
    assert behind(10.66, 1.69, 15.57, 0.8, again(33.0)) == (33.0, 0.3, False) and calls == [33.0]
    calls.clear()
    assert behind(24.0, 5.0, 26.5, 0.8, again(50.0))[2] and not calls  # a run costs too much to repeat
    assert behind(24.0, 0.01, 26.5, 0.8, again(50.0)) == (24.0, 0.01, False) and not calls  # too short to say
    assert behind(30.0, 0.3, 26.5, 0.8, again(1.0)) == (30.0, 0.3, False) and not calls  # over the bar
    assert behind(1.0, 0.3, None, 0.8, again(50.0)) == (1.0, 0.3, False) and not calls  # no bar: the script's own


def test_two_candidates_are_compared_on_their_quiet_processes_where_both_have_some():
    from redline.tuning.result import fair

    a = Candidate("a", passes=[80.0, 40.0], runs=[80.0, 40.0], detail={"contention": [0.01, 0.2]})
    b = Candidate("b", passes=[40.0, 70.0], runs=[40.0, 70.0], detail={"contention": [0.2, 0.02]})
    assert fair(a, b) == ([80.0], [70.0])
    c = Candidate("c", passes=[40.0, 45.0], runs=[40.0, 45.0], detail={"contention": [0.2, None]})  # none quiet
    assert fair(a, c) == ([80.0, 40.0], [40.0, 45.0])
    assert Candidate("d", passes=[1.0], detail={}).quiet_passes == []  # not available: not quiet


def test_compared_on_quiet_processes_the_spread_is_theirs_too():
    """imbalanced_mlp on a loaded VM: JAX's quiet process read 32.3 steps/s, its other two (12.6% and 50% of the
    machine lost) 18.6-18.8; the script as written's quiet one 20.6. Compared on quiet processes, JAX is ahead beyond
    their spread; the busy processes' spread is not theirs."""
    from redline.tuning.choose import better
    from redline.tuning.absorb import absorb

    def cand(name, processes):
        c = Candidate(name)
        for rounds, lost in processes:
            absorb(c, {"status": "ok", "candidates": {"default": {"steps_per_s": rounds}},
                       "contention": {"steal": lost, "others": 0.0}})
        return c

    jax = cand("backend jax", [([31.0, 33.0, 32.3], 0.018), ([18.0, 19.0, 18.8], 0.126), ([18.0, 19.5, 18.6], 0.5)])
    written = cand("as written", [([19.5, 21.5, 20.6], 0.0185), ([23.0, 25.0, 24.0], 0.325)])
    assert jax.quiet_runs == [31.0, 33.0, 32.3] and written.quiet_runs == [19.5, 21.5, 20.6]
    assert jax.spread > 0.5  # every process: the busy ones' spread
    assert better(jax, written)
    close = cand("close", [([21.0, 23.0, 22.0], 0.01), ([18.0, 19.0, 18.8], 0.3)])
    assert not better(close, written)  # 1.07x on quiet processes, within their rounds' spread (10%)
    unknown = Candidate("u", passes=[32.3], runs=[32.3], detail={"contention": [0.01]})  # rounds per process unknown
    assert unknown.quiet_runs == []


@pytest.mark.parametrize("maps, measured", [(0, False), (2, True), (None, True)])
def test_parallel_maps_is_a_candidate_only_where_the_first_trial_counted_a_sequential_map(monkeypatch, maps, measured):
    """A tf.data pipeline without a sequential Dataset.map: the rewrite would change nothing, so no trial process
    measures it (a count not made, None: measured as before)."""
    from redline.tuning import search

    calls = []
    more = {"data": "_PrefetchDataset", **({} if maps is None else {"sequential_maps": maps})}
    monkeypatch.setattr(search, "run_trial", fake_trials({}, lambda cand, trial: calls.append(cand.name), **more))
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert ("parallel maps" in calls) == measured and ("parallel maps" in [c.name for c in result.processes]) == measured
    said = [r for r in result.reasons if r.startswith("parallel maps: not a candidate")]
    assert bool(said) == (not measured), result.reasons


def test_a_rival_whose_start_alone_outlasts_the_script_s_run_is_dropped_with_its_figures(monkeypatch):
    """A short run (a few seconds of training after a long start): a rival with no figures by the cap (a trial process
    of the script as written and its whole training, with a margin) cannot end the run sooner; the script as written is
    never held to it."""
    from redline.tuning import search
    from redline.tuning.passes import SLOW_START, START_SLACK, beyond_trace, start_cap, whole_run

    assert start_cap(whole_run(40.0, 15.0)) == pytest.approx(SLOW_START * 55.0 + START_SLACK, abs=0.05)
    # the margin is the slack alone: a first figure (start, trace and a round of training, the fits before cut short)
    # later than the whole run cannot end sooner (fine_tune: a 45-s run; at 1.25x JAX held 61 s of a 180-s budget)
    assert start_cap(whole_run(30.0, 15.0)) == pytest.approx(45.0 + START_SLACK, abs=0.05)
    assert whole_run(None, 15.0) is None and whole_run(40.0, None) is None and start_cap(None) is None
    # xception_scratch's first trial: 115.7 s, 98.3 of them measuring, 15 of those tracing; 115 s of training. A run
    # of the script pays the trace, not the measurement: JAX waited 243 s for no figures, against a 144-s run
    assert beyond_trace({"measure_s": 98.3, "trace_s": 15.0}) == pytest.approx(83.3)
    assert beyond_trace({"measure_s": 98.3}) == 0.0  # the trace not known: the whole measurement counts as the run's
    assert whole_run(115.7, 115.0, 83.3) == pytest.approx(115.7 - 83.3 + 115.0)
    caps = {}

    def fake(script, args, cand, trial, timeout, **_):
        caps.setdefault(cand.name, trial.get("measure_by"))
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [10.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        if cand.name == "backend jax":  # what run_trial returns where the cap came first
            return {"status": "slow-start", "waited_s": trial["measure_by"], "error": "no figures"}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [10.0, 10.1, 9.9]}}, "data": "ndarray",
                "backend": "tensorflow", "steps_in_epoch": 10, "epochs": 3}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert jax.dropped.startswith("decisively behind: its trial process had no figures after") and not jax.error
    # the cap: at least SLOW_START x the 3 s of training (10 steps an epoch, 3 epochs, at 10 steps/s) + START_SLACK,
    # above that by the fake trial process's own (tiny) wall time
    assert caps["as written"] is None and caps["backend jax"] >= SLOW_START * 3.0 + START_SLACK - 0.05, caps
    assert result.chosen_process is result.default


def test_the_start_cap_counts_the_script_as_written_s_trace_not_its_trial_s_measurement(monkeypatch):
    """xception_scratch (5-s steps): JAX had no figures after 243 s, the cap a first trial of 116 s plus 115 s of
    training, where the script runs 144 s whole. The first trial's measurement (98 s, 15 of them tracing) is not part
    of a run; its trace is."""
    from redline.tuning import search
    from redline.tuning.passes import SLOW_START, START_SLACK

    clock, caps = {"t": 0.0}, {}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])

    def fake(script, args, cand, trial, timeout, **_):
        caps.setdefault(cand.name, trial.get("measure_by"))
        clock["t"] += 40.0
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [10.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        if cand.name == "backend jax":
            return {"status": "slow-start", "waited_s": trial["measure_by"], "error": "no figures"}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [10.0, 10.1, 9.9]}}, "data": "ndarray",
                "backend": "tensorflow", "steps_in_epoch": 10, "epochs": 3, "measure_s": 30.0, "trace_s": 5.0}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    # a run: the 40-s trial less its 25 s of measuring beyond the trace, plus 3 s of training
    assert caps["backend jax"] == pytest.approx(SLOW_START * (40.0 - 25.0 + 3.0) + START_SLACK, abs=0.1), caps
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert "whole run is predicted at about 18 s" in jax.dropped, jax.dropped


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("jax") is None, reason="JAX is not installed")
def test_a_trial_with_no_figures_by_its_cap_ends_there_and_says_so(tmp_path):
    from tune_helpers import TINY, script, trial
    from redline.tuning.search import run_trial

    s = script(tmp_path, TINY.replace("import keras\n", "import keras\nimport time; time.sleep(60)\n"))
    res = run_trial(s, [], Candidate("x", JAX), {**trial({"default": {"own": True}}), "measure_by": 2.0}, 120)
    assert res["status"] == "slow-start" and res["waited_s"] == 2.0, res


@pytest.mark.parametrize("rival, second", [([5.67, 5.37], True), ([4.9, 4.45], False)])
def test_a_rival_ahead_in_one_process_of_two_figures_gets_a_second_not_a_verdict_of_noise(monkeypatch, rival, second):
    """Slow epochs (a fine-tuning run: 10 steps at 5 steps/s) are measured in steps, 2 rounds a process: 2 figures,
    under MIN_RUNS, so no rival can be chosen after one process. 1 intra-op thread at 1.29x, both quiet, was dropped
    as "not ahead beyond the noise" there: it is ahead on its figures, so it gets its second process; a rival within
    the noise of the script as written on them is still dropped after one (that saves a process a rival)."""
    from redline.tuning import search

    calls = []
    figures = {"as written": ([4.46, 4.14], 0.01), "oneDNN on": (rival, 0.01)}
    monkeypatch.setattr(search, "run_trial", fake_processes(lambda name: figures.get(name, ([1.0] * 2, 0.01)), calls))
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    c = next(c for c in r.processes if c.name == "oneDNN on")
    assert (calls.count("oneDNN on") >= 2) == second, calls
    assert (c.dropped or "").startswith("not ahead beyond the noise") != second, c.dropped
    assert (r.chosen_process is c) == second  # 1.29x in 4 figures each, beyond their spreads


def _clocked(monkeypatch, thread_rate: float) -> list:
    """Fake trials on a fake clock: a trial process takes 40 s, the in-process stage's 5; the script as written runs
    100 steps/s, JAX 40, oneDNN on 50, one intra-op thread ``thread_rate``. Returns the list of trials run."""
    from redline.tuning import search

    clock, calls = {"t": 0.0}, []
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])
    rates = {"as written": 100.0, "backend jax": 40.0, "oneDNN on": 50.0, "1 intra-op thread": thread_rate}

    def fake(script, args, cand, trial, timeout, **_):
        calls.append("in-process" if "ladder" in trial else cand.name)
        clock["t"] += 5.0 if "ladder" in trial else 40.0
        return fake_trials(rates, lambda *_: None)(script, args, cand, trial, timeout)

    monkeypatch.setattr(search, "run_trial", fake)
    return calls


@pytest.mark.parametrize("thread_rate, dropped", [(60.0, True), (200.0, False)])
def test_a_candidate_the_stage_s_reserve_left_unmeasured_is_measured_with_what_the_stage_did_not_use(
        monkeypatch, thread_rate, dropped):
    """slow_conv: 1 intra-op thread stood "not measured: the budget ran out" with 31 s of the budget unused after a
    stage shorter than its reserve. It is measured after the stage: dropped with its figures, or, ahead, shown but not
    chosen (the stage's knobs were measured in another process)."""
    from redline.tuning import search

    calls = _clocked(monkeypatch, thread_rate)
    result = search.tune("train.py", budget_s=200, snapshot=m.vm_2core(), complete=False)
    assert calls.index("in-process") < calls.index("1 intra-op thread"), calls  # the reserve kept it out at first
    thread = next(c for c in result.processes if c.name == "1 intra-op thread")
    assert thread.passes and result.chosen_process.name == "as written"
    assert any("measured after the in-process stage" in r for r in result.reasons), result.reasons
    if dropped:
        assert "0.60x" in thread.dropped and result.not_measured == [], result.not_measured
    else:
        assert not thread.dropped and any("not chosen" in r for r in result.reasons), result.reasons
        assert [n for n in result.not_measured if n.startswith("1 intra-op thread")] == [
            "1 intra-op thread: ahead in its trial process(es) measured after the in-process stage, not chosen: the "
            "budget ran out before its own in-process stage"], result.not_measured


def test_the_late_pass_needs_what_a_rival_s_trial_process_took_not_the_first_trial_s(monkeypatch):
    """slow_conv: the first trial (a fresh process, the rest of the script after its figures) took 25-27 s, a rival's
    16 s; one intra-op thread stayed unmeasured with 26 s left after the stage."""
    from redline.tuning import search

    clock = {"t": 0.0}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])
    rates = {"as written": 100.0, "backend jax": 40.0, "oneDNN on": 50.0, "1 intra-op thread": 60.0}
    calls = []

    def fake(script, args, cand, trial, timeout, **_):  # the first trial 40 s, a rival's 15, the stage's 60
        calls.append("in-process" if "ladder" in trial else cand.name)
        clock["t"] += 60.0 if "ladder" in trial else 40.0 if len(calls) == 1 else 15.0
        return fake_trials(rates, lambda *_: None)(script, args, cand, trial, timeout)

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=160, snapshot=m.vm_2core(), complete=False)
    # before the stage, a 40-s process fits beside its reserve (64 s) once; after it, 30 s are left: a rival's 15 s
    assert calls == ["as written", "backend jax", "in-process", "oneDNN on", "1 intra-op thread"], calls
    assert all(c.passes and c.dropped for c in result.processes[1:] if not c.error), result.processes
    assert result.not_measured == [], result.not_measured


def test_the_late_pass_reads_a_rival_s_cost_from_rivals_on_its_own_side_of_the_backend(monkeypatch):
    """fine_tune at 180 s: JAX's process ran 48 s to no figures, oneDNN off's 21 s; one intra-op thread stood "not
    measured" with 34 s left after the stage, the late pass asking for the longest rival's 39 s (the first trial's
    cap). A rival on the script's own backend needs what those took: JAX's start says nothing of theirs."""
    from redline.tuning import search

    clock = {"t": 0.0}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])
    rates = {"as written": 100.0, "backend jax": 40.0, "oneDNN on": 50.0, "1 intra-op thread": 60.0}
    calls = []

    def fake(script, args, cand, trial, timeout, **_):  # the first trial 40 s, JAX's 48, another rival's 15, stage 60
        calls.append("in-process" if "ladder" in trial else cand.name)
        clock["t"] += min(timeout, 60.0 if "ladder" in trial else 40.0 if len(calls) == 1 else
                          48.0 if "jax" in cand.name else 15.0)
        return fake_trials(rates, lambda *_: None)(script, args, cand, trial, timeout)

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=200, snapshot=m.vm_2core(), complete=False)
    # after the stage 50 s are left: oneDNN on (40 s asked, the first trial's), then 35 s: one thread (15 s asked)
    assert calls == ["as written", "backend jax", "in-process", "oneDNN on", "1 intra-op thread"], calls
    assert all(c.passes and c.dropped for c in result.processes[1:] if not c.error), result.processes
    assert result.not_measured == [], result.not_measured


def test_a_candidate_the_budget_left_without_a_process_is_one_line_once_even_after_the_late_pass(monkeypatch):
    """fine_tune at 180 s: 'oneDNN off' stood "not measured" six times, once a pass (3 of them) in the passes before
    the stage and again in the late pass after it, where it never had a single trial process."""
    from redline.tuning import search

    calls = _clocked(monkeypatch, 60.0)
    result = search.tune("train.py", budget_s=120, snapshot=m.vm_2core(), complete=False)
    assert calls == ["as written", "in-process", "backend jax"], calls  # the late pass had room for one rival
    assert len(result.not_measured) == len(set(result.not_measured)), result.not_measured
    for name in ("oneDNN on", "1 intra-op thread"):
        assert [n for n in result.not_measured if n.startswith(name)] == [
            f"{name} (no trial process): the budget ran out"], result.not_measured


HOST_BOUND_CALLS = {"host_share": [0.65, 0.0009, 0.0014]}  # 65% of a 1.4-ms call outside its compiled work


@pytest.mark.parametrize("budget, first, reordered", [
    (180, {}, True), (2000, {}, False),
    (180, {**HOST_BOUND_CALLS, "trace_s": 0.8}, False),  # host-bound, a quick trace: another backend first
    (180, {**HOST_BOUND_CALLS, "trace_s": 12.0}, True),  # host-bound, but a slow trace: its compile may be slower
    (180, {"host_share": [0.03, 0.002, 0.06], "trace_s": 0.8}, False),  # compiled work: JAX is watched: kept first
    (180, {"host_share": [0.03, 0.002, 0.06], "trace_s": 7.3}, False),  # (xception_scratch at 90x90)
    (180, {"host_share": [0.03, 0.002, 0.06], "trace_s": 18.0}, True)])  # a slow trace: its compile may be long too
def test_where_the_budget_holds_only_some_rivals_those_of_known_cost_go_first_and_no_stage_is_reserved_in_vain(
        monkeypatch, budget, first, reordered):
    """xception_scratch (5-s steps) at 180 s: after an 84-s first trial, the stage's reserve kept every rival out and
    the stage (~400 s needed) was killed at 94 s with nothing measured; before that, JAX had eaten the rest with no
    figures. Rivals on the script's own backend (a trial process costs what the first's did) go first where not all
    fit; with a budget that holds them all, the order stays. So it does where the first trial's calls are host-bound
    and its step traced quickly (an MLP under --budget auto: oneDNN off and one thread measured, JAX, 5.3x, never),
    and where the step traced in under WATCH_TRACE (JAX's first execution is judged while it runs: xception_scratch at
    90x90 decided JAX, oneDNN off and one thread at 180 s that way)."""
    from redline.tuning import search

    clock = {"t": 0.0}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])
    calls = []

    def fake(script, args, cand, trial, timeout, **_):  # every trial process 40 s; steps of 5 s (0.2 steps/s)
        calls.append("in-process" if "ladder" in trial else cand.name)
        clock["t"] += min(40.0, timeout)
        return fake_trials({"as written": 0.2, "backend jax": 0.02, "oneDNN on": 0.1, "1 intra-op thread": 0.11},
                           lambda *_: None, stage=0.2, steps_in_epoch=6, epochs=10, **first)(script, args, cand, trial,
                                                                                              timeout)

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=budget, snapshot=m.vm_2core(), complete=False)
    rivals = [c for c in calls[1:] if c not in ("in-process", "as written")]
    if reordered:
        assert rivals[:2] == ["oneDNN on", "1 intra-op thread"], calls  # 138 s left: both, before anything else
        assert calls[1:3] == ["oneDNN on", "1 intra-op thread"], calls
        assert any("go first" in r for r in result.reasons), result.reasons
    else:
        assert rivals[0] == "backend jax", calls
        assert not any("go first" in r for r in result.reasons), result.reasons
        assert ("another backend goes first" in " ".join(result.reasons)) == bool(first), result.reasons
    for name in ("oneDNN on", "1 intra-op thread"):
        assert next(c for c in result.processes if c.name == name).dropped, result.processes


def test_a_later_process_the_budget_ends_leaves_the_candidate_s_figures_and_is_said_as_not_measured(monkeypatch):
    """from_generator: JAX's third process started with 22 s left and had no figures by then; "no result within 22 s
    (the budget)" became its error, so its two processes' figures were shown as "dropped" and out of the race."""
    from redline.tuning import search

    import itertools

    # rounds past a gain: a second process (which the budget ends), then a third within the noise
    jax = itertools.chain([[85.0, 120.0, 150.0]], itertools.repeat([100.0, 101.0, 99.0]))
    calls = []

    def figures(name):
        runs = (next(jax) if name == "backend jax" else [100.0, 101.0, 99.0] if name == "as written"
                else [40.0, 40.4, 39.6])
        return runs, 0.01

    inner = fake_processes(figures, calls)

    def fake(script, args, cand, trial, timeout, **kw):
        if cand.name == "backend jax" and calls.count("backend jax") == 1:  # its second process: the budget ends it
            calls.append(cand.name)
            return {"status": "timeout", "error": "no result within 22 s (the budget)"}
        return inner(script, args, cand, trial, timeout, **kw)

    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax_ = next(c for c in r.processes if c.name == "backend jax")
    assert calls.count("backend jax") >= 2, calls
    assert jax_.error is None and jax_.runs[:3] == [85.0, 120.0, 150.0], (jax_.error, jax_.runs)
    assert "backend jax (trial process 2 of 3): no result within 22 s (the budget)" in r.not_measured, r.not_measured
    # with no figures yet, a process the budget ended is all there is: the candidate says so as its error
    from redline.tuning.absorb import absorb

    alone = Candidate("backend jax")
    absorb(alone, {"status": "timeout", "error": "no result within 9 s (the budget)"})
    assert alone.error == "no result within 9 s (the budget)"


def test_a_first_process_the_budget_ends_is_said_as_not_measured_not_as_dropped(monkeypatch):
    """xception_scratch at 64x64: JAX started with 34 s left (its compile and two 25-s steps take about 80) and ended
    at the budget with no figures. That is no verdict on JAX: the tune says it was not measured, in its list and its
    table, and does not show it as dropped."""
    from redline.cli.tune import text
    from redline.tuning import search

    calls = []
    inner = fake_processes(lambda name: ([100.0, 101.0, 99.0] if name == "as written" else [40.0, 40.4, 39.6], 0.01),
                           calls)

    def fake(script, args, cand, trial, timeout, **kw):
        if cand.name == "backend jax":
            calls.append(cand.name)
            return {"status": "timeout", "error": f"no result within {timeout:.0f} s (the budget)"}
        return inner(script, args, cand, trial, timeout, **kw)

    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert "backend jax" in calls, calls
    assert any(n.startswith("backend jax (trial process 1 of 3): no result within") for n in r.not_measured), r.not_measured
    out = text(r)
    assert "not measured: no result within" in out and "dropped: no result within" not in out, out


def test_a_stage_stopped_before_its_rounds_keeps_its_input_path_and_says_its_knobs_were_not_measured():
    """xception at 64x64 on a slow run: the stage's trial had 51 s and was stopped in jit's calibration. Its partial
    result (sent once the input path was decided) keeps that decision, and the knobs are said as not measured, not as
    "no candidate beat the script's own"."""
    from redline.tuning.inprocess import inprocess_stage

    best = Candidate("as written", runs=[0.4, 0.41, 0.39], passes=[0.4], train_runs=[0.45, 0.45])
    res = {"status": "ok", "partial": True, "steps_in_epoch": 6, "candidates": {}, "script_compile": {},
           "inputs": {"as written": {"steps_per_s": [0.45]},
                      "input: redline.data.optimize": {"dropped": "the input as written, read alone, delivers 19 ..."}},
           "input_chosen": None, "not_measured": ["the rest of this trial's measurements: it was stopped at the budget"]}
    st = inprocess_stage(lambda cand, settings, timeout: res, best, "tensorflow", 2, [], lambda: 100.0, 30.0,
                         lambda line: None)
    assert st.chosen_knobs is None and st.chosen_input is None
    assert any(r.startswith("the input path: no rewrite beat") for r in st.reasons), st.reasons
    assert not any("no candidate beat the script's own compile" in r for r in st.reasons), st.reasons
    assert "steps_per_execution / jit_compile: the budget ran out before the stage's rounds" in st.not_measured
    # where the script's own calibration showed the ladder cannot matter (sent before jit's calibration), the ladder
    # is decided and only jit_compile is not measured
    res["ladder_skip"] = "the host's share of a call is 0.1%: ..."
    st = inprocess_stage(lambda cand, settings, timeout: res, best, "tensorflow", 2, [], lambda: 100.0, 30.0,
                         lambda line: None)
    assert "steps_per_execution ladder: the host's share of a call is 0.1%: ..." in st.reasons, st.reasons
    assert "jit_compile: the budget ran out before the stage's rounds" in st.not_measured, st.not_measured
    assert not any("steps_per_execution" in n for n in st.not_measured), st.not_measured


def test_only_a_rival_whose_compile_is_heard_and_a_quick_trace_keep_another_backend_first():
    from redline.tuning.first_look import WATCH_TRACE, watched

    jax, torch = Candidate("backend jax", {"KERAS_BACKEND": "jax"}), Candidate("backend torch", {"KERAS_BACKEND": "torch"})
    assert watched(jax, 7.3) and not watched(jax, 18.0) and not watched(jax, WATCH_TRACE) and not watched(jax, None)
    assert not watched(torch, 0.8)  # torch reports no compile: nothing to watch
    assert not watched(Candidate("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}), 0.8)


@pytest.mark.parametrize("budget", [140, 2000])
def test_rivals_that_can_be_applied_go_before_advice_only_ones(monkeypatch, budget):
    """A knowledge-distillation script that pins TensorFlow itself (~34-s trial processes, 180 s): JAX, advice only
    (the script's own line wins), took its trial first, and oneDNN off and one thread, which `redline run` could
    apply, were "not measured: the budget ran out". Where the budget holds only some rivals, those that can be
    applied go first; with a budget that holds them all, every one is still measured, the advice too."""
    from redline.tuning import search

    clock = {"t": 0.0}
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])
    calls = []

    def fake(script, args, cand, trial, timeout, **_):  # every trial process 40 s, the in-process stage's 5
        calls.append("in-process" if "ladder" in trial else cand.name)
        clock["t"] += 5.0 if "ladder" in trial else 40.0
        return fake_trials({"as written": 100.0, "backend jax": 40.0, "oneDNN on": 90.0, "1 intra-op thread": 95.0},
                           lambda *_: None, pinned_backend="tensorflow", pinned_at="train.py:3")(
            script, args, cand, trial, timeout)

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=budget, snapshot=m.vm_2core(), complete=False)
    rivals = [c for c in calls[1:] if c not in ("in-process", "as written")]
    applicable = ["oneDNN on", "1 intra-op thread"]
    if budget == 2000:
        assert rivals[:3] == [*applicable, "backend jax"], calls
        assert next(c for c in result.processes if c.name == "backend jax").passes, calls
    else:
        assert rivals == applicable, calls  # the order before: JAX, then oneDNN on; one thread not measured

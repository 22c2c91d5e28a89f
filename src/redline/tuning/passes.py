"""The per-process stage of tune: the settings that need a fresh process, each measured in trial processes, in passes
that alternate direction, until nothing is left that another process could decide.

A rival is dropped once it is decisively behind (after its first executions, under BEHIND x the fastest rate measured
so far; after its first process, under PRUNE x the best; or beyond the spread of the script as written or of the one
candidate decisively ahead), or once its first process shows no gain over the script as written (under MIN_GAIN: a
choice needs that gain beyond the spread of both, and two more processes of each rival within noise of the script as
written were most of the time spent tuning scripts that nothing beats), and so after its second; nor is a rival not
decisively ahead in its first process where it and the script as written both ran quiet, nor one whose start no gain
its quiet processes allow could pay for (payoff.cannot_pay), nor one not ahead whose best gain would take more than
payoff.REPAY_RUNS runs to repay another pass (payoff.not_worth_a_pass). A rival on another backend whose one process
lost more of the machine than the script as written's gets a second process before no gain drops it (second_chance).
A rival on the script's own backend whose training steps fall under the prune (no gain, or under PRUNE x the best,
scaled by the script as written's whole epochs to its steps) is not measured in whole epochs (same_backend). A winner
needs 2 processes of its own, and the script as written 2 as well (one of its processes may run slow as a whole),
unless its one process was measured on the machine as it was (quiet: little steal, few other processes); where a
winner ran quiet in some of its processes and the script as written in none, a third process of the script as written
is measured, and the two are compared on quiet processes where both have some (result.fair); the winner's second may
be the in-process stage's trial, which measures the same configuration whole before its knobs: one process fewer. A
candidate that can only be advice (the script pins its backend itself) is measured in one process: its figure is
shown, never applied, so it is not in the race, nor in the bar or the prune the racing candidates are held to.
"""

from __future__ import annotations

from .choose import MIN_RUNS, ahead_of, better
from .absorb import BEHIND, absorb
from .compare import MIN_GAIN, QUIET, median
from .payoff import cannot_pay, not_worth_a_pass
from .result import Candidate

#: trial processes per per-process candidate, and the share of the best median below which a candidate is not measured
#: after its first process.
PASSES = 3
PRUNE = 0.8
#: a lone leader's second process is the in-process stage's trial only where its first ran at least this many times
#: the script as written's: where it then falls back, a third process of each runs and the stage is measured again
#: in the new choice (55 s, against the 10 s of a plain second process). On a 2-core VM, three leads of 1 intra-op
#: thread at 1.08x, 1.25x and 1.32x in their first processes fell back; JAX at 3.9x and 4.7x held.
LONE_LEAD = 1.5
#: a rival whose trial process has no figures after SLOW_START x (a trial process of the script as written and its
#: whole predicted training) plus START_SLACK seconds is dropped there (start_cap). Its first figure comes after its
#: start, its trace and a round of its training, and its trial cuts the fits before the one measured short (a spare's
#: imports are not counted either), so where that alone outlasts the script as written's whole run, its own run
#: cannot end sooner: 1.0x, START_SLACK for the noise of a process's start. At 1.25x, fine_tune's JAX process ran
#: 61 s to no figures (the script runs ~45 s), and 1 intra-op thread stood unmeasured with 19 s of 180 left.
SLOW_START, START_SLACK = 1.0, 5.0
#: a leader this many times the script as written, process for process, needs no quiet process of the script as
#: written to compare with (unfair): busy processes read down to 0.43x quiet ones (cnn_augment: 38 against 65-88)
UNFAIR_LEAD = 3.0


def quiet(cand: Candidate) -> bool:
    """True where every process of ``cand`` was measured on the machine as it was: each lost under QUIET of the
    machine's CPU time to steal and to other processes (monitoring/contention.py). A process that lost more may have
    run slow as a whole; one whose share is not available counts as such."""
    return bool(cand.passes) and len(cand.quiet_passes) == len(cand.passes)


def unfair(default: Candidate, best: Candidate) -> bool:
    """True where ``best`` has processes that ran on the machine as it was and the script as written none yet (each of
    its lost at least QUIET: cnn_augment's two read 38-40 steps/s where quiet ones read 65-88, against a rival's two
    quiet ones at 78-80): one more process of the script as written, up to PASSES, may run quiet, and the two are then
    compared on such processes (result.fair). Not where the leader's slowest process ran UNFAIR_LEAD x the script as
    written's fastest: no share of the machine lost explains that (tabular_mlp: JAX at 5.3x took a third process of
    the script as written, 12 s of a 65-s tune, to the same choice)."""
    return (best is not default and bool(best.quiet_passes) and not default.quiet_passes and len(default.passes) < PASSES
            and not (best.passes and default.passes and min(best.passes) >= UNFAIR_LEAD * max(default.passes)))


def same_backend(cand: Candidate) -> bool:
    """A rival on the script's own backend (oneDNN, threads, parallel maps, precision): the rest of its epoch
    (validation, callbacks, progress) runs the same code as the script as written's, so where its training steps show
    no gain its whole epochs will not either. Not so for another backend: JAX read 0.82x in training steps on an MLP
    that ran 1.53x whole (it runs the callbacks on a thread pool)."""
    return "KERAS_BACKEND" not in cand.env and not cand.trial.get("force_backend")


def second_chance(cand: Candidate, default: Candidate, live) -> str | None:
    """Why a rival on another backend, measured in one process, within PRUNE of the best, gets a second process before
    no gain drops it (None where it does not):
    - its one process lost at least QUIET of the machine's CPU time, more than any process of the script as written:
      it may have run slow as a whole (imbalanced_mlp: JAX read no gain in a process that lost 11% where its whole runs
      were 1.78x the script as written's, and the script was kept as written);
    - or its rounds spread past a gain: the fastest reached (1 + MIN_GAIN) x the script as written's median, so its
      median alone cannot call it no gain (backup, a tf.data MLP: JAX read 0.86x in one process whose rounds ran
      213-347 against 258 as written, and ran 1.36x whole).
    Not so on the script's own backend: its figures move with the script as written's on a busy machine."""
    top = _top(default, live).median
    if same_backend(cand) or len(cand.passes) != 1 or not (top and cand.median and default.median) \
            or cand.median < PRUNE * top:
        return None
    shares = cand.detail.get("contention") or []
    own = [s for s in default.detail.get("contention") or [] if s is not None]
    if shares and shares[0] is not None and shares[0] >= QUIET and shares[0] > max(own, default=0.0):
        return (f"its first lost {shares[0]:.1%} of the machine's CPU time to steal and other processes, more than the "
                "script as written's (it may have run slow as a whole)")
    fastest = max(cand.runs, default=0.0)
    if fastest >= (1 + MIN_GAIN) * default.median:
        return (f"its first process's rounds ran {min(cand.runs):,.1f}-{fastest:,.1f} steps/s against "
                f"{default.median:,.1f} as written (median {cand.median / default.median:.2f}x): one process of "
                "rounds that spread across the gain a choice needs cannot decide it")
    return None


def _racing(live) -> list:
    """The candidates still in the race: not failed, not dropped, and not advice already measured in its process."""
    return [c for c in live if not (c.error or c.dropped or (c.advice and c.passes))]


def settled(default: Candidate, live, passes: int = 2) -> bool:
    """True where no candidate still in the race needs another trial process: each is out (failed, dropped, or now
    decisively behind the script as written or the one candidate decisively ahead of it: its median plus the spread
    of either under theirs, marked dropped with its figures), and at most one is decisively ahead (it beats the
    default beyond the spread, each of the two measured in at least ``passes`` processes: a whole process of the script
    as written can run slow, 37 steps/s where its others ran 65-88). Where two are ahead, which is faster still needs
    measuring."""
    racing = _racing(live)
    if any(not (c.median and default.median) for c in racing):
        return False
    ahead = [c for c in racing if better(c, default) and len(c.passes) >= passes]
    if ahead and len(default.passes) < passes and not quiet(default):  # one process of the script as written may
        return False  # have run slow as a whole, unless it was measured on the machine as it was
    leader = max(ahead, key=lambda c: c.median, default=None)
    undecided = 0
    for c in racing:
        if c in ahead:
            continue
        if second_chance(c, default, live):
            undecided += 1
            continue
        for rival in (default, *([leader] if leader is not None else [])):  # behind the default, or behind the leader
            need = max(MIN_GAIN, c.spread, rival.spread)
            if c.median * (1 + need) < rival.median and len(c.runs) >= MIN_RUNS:
                c.dropped = (f"decisively behind {'the script as written' if rival is default else repr(rival.name)} "
                             f"({c.median:,.1f} against {rival.median:,.1f} steps/s, spreads {c.spread:.0%} and "
                             f"{rival.spread:.0%}): not measured again")
                break
        else:
            undecided += 1
    return undecided == 0 and len(ahead) <= 1


def lone_leader(default: Candidate, live) -> Candidate | None:
    """The one candidate decisively ahead of the script as written in its single process, at least LONE_LEAD x its
    rate, every other one decided (settled but for the leader's second process), or None. Its next process is the
    in-process stage's trial; where it is within the noise after that, a third process of each decides. Not a leader
    ahead within the noise: where it then falls back, the stage would be measured twice (cnn_augment: parallel maps at
    1.18x in its first process, 1.04x after three, two stages of 45 s)."""
    racing = _racing(live)
    ahead = [c for c in racing if better(c, default)]
    if (len(ahead) == 1 and len(ahead[0].passes) == 1 and ahead[0].median >= LONE_LEAD * default.median
            and settled(default, live, passes=1)):
        return ahead[0]
    return None


def _top(default: Candidate, live) -> Candidate:
    """The fastest candidate measured so far that could be chosen (the script as written where none is faster)."""
    return max((c for c in [default, *live] if c.median and not (c.error or c.advice)), key=lambda c: c.median,
               default=default)


def bar(default: Candidate, live) -> float:
    """BEHIND x the fastest training rate measured so far: the script as written's or a rival's (a TensorFlow setting
    under half of what JAX already runs cannot win)."""
    rates = [median(c.train_runs or c.runs) for c in (default, *live) if not (c.error or c.advice)
             and (c.train_runs or c.runs) and "behind" not in (c.dropped or "")]
    return round(BEHIND * max(rates), 3)


def _expected(default: Candidate, live, due: list) -> list:
    """The two trials expected after this one (their processes are started meanwhile: tuning/spares.py; a spare
    imports only while no trial measures, so the second gets a head start over the next trial's short set-up and the
    rest of its script): those still due in this pass, then, where the script as written has had one process, its
    second (it comes before a winner), and the leader (its next process, or the in-process stage's)."""
    top = _top(default, live)
    return [*due, *([default] if top is not default and len(default.passes) < 2 else []), top][:2]


def beyond_trace(res: dict) -> float:
    """Seconds of a trial's measurement a run of the script would not spend: all of it but its trace (0 where the
    trace is not known: the whole measurement then counts as the run's)."""
    measure, trace = res.get("measure_s"), res.get("trace_s")
    return max(0.0, float(measure) - float(trace)) if measure and trace is not None else 0.0


def whole_run(first_wall: float | None, training_s: float | None, beyond_s: float = 0.0) -> float | None:
    """Seconds the script as written's whole run is predicted to take: its first trial process (``first_wall``: its
    start, every fit's trace, its measurements and the rest of the script, training cut short), less what its
    measurements took beyond their traces (``beyond_s``: beyond_trace of each fit it measured), plus the whole
    predicted training (``training_s``). A two-fit script's first trial measures both: fit 1's trace stays in."""
    if not first_wall or training_s is None:
        return None
    return max(0.0, first_wall - beyond_s) + training_s


def start_cap(run_s: float | None) -> float | None:
    """Seconds after which a rival's trial process that has no figures yet is ended as decisively behind: its start
    alone (imports, the script up to the fit measured, that fit's compile) then outlasts the script as written's
    whole run (``run_s``: whole_run), so its run cannot end sooner, whatever its steps cost (JAX
    tracing a large model for a short fine-tuning run; xception_scratch: 243 s of JAX with no figures, where the
    script runs 144 s)."""
    return None if not run_s else round(SLOW_START * run_s + START_SLACK, 1)


def process_stage(run, default: Candidate, live: list, *, per_trial: float, left, progress,
                  training_s: float | None = None, run_s: float | None = None, cost_of=None):
    """The passes over ``live`` (the default, measured first, already in ``default``). ``run(cand, extra, timeout,
    ahead)``: one trial process (``ahead``: the trials expected after it); ``left()``: seconds this stage may still
    use; ``training_s``: the script's whole training as written, and ``run_s``: its whole run, predicted (whole_run,
    for start_cap); ``cost_of(rival)``: the seconds its process needs left to start (default ``per_trial``). Returns
    (reasons, not measured, endings: how the whole script ended after each candidate's measurement, and the lone leader
    whose second process is left to the in-process stage, else None)."""
    reasons_early, not_measured, endings = [], [], {}
    cap = start_cap(run_s)

    def measure(cand, rep, ahead=None) -> None:
        """One trial process of ``cand``; ``ahead``: the trial expected after it (its process started meanwhile)."""
        progress(f"trial: {cand.name}" + (f" (pass {rep + 1} of {PASSES})" if rep else ""))
        extra = {"follow": False}  # the script as written again: how it ends is known from its first trial
        if cand is not default:  # a rival: stopped early where it cannot be chosen (bar), and spared the loss
            # check and the rest of the script where it will not be measured again (prune) or is advice only
            top = _top(default, live).median
            floor = max(PRUNE * top, (1 + MIN_GAIN) * default.median) if top and default.median else None
            extra = {"behind_below": bar(default, live), "follow": not cand.advice, "check": not cand.advice,
                     **({"prune_below": round(floor, 3)} if rep == 0 and floor else {}),
                     **({"epoch_overhead_s": round(median(default.overhead_s), 3)} if default.overhead_s else {}),
                     **({"measure_by": cap} if cap and not cand.advice else {}),
                     # advice has its one process: a third round there gives it the 3 figures a decision takes
                     **({"rounds": 3} if cand.advice else {})}
            own_train = median(default.train_runs or default.runs)
            if rep == 0 and own_train and floor and same_backend(cand):  # its training steps under the prune, as the
                # script as written's whole epochs stand to its steps (the rest of the epoch as much faster as its
                # steps: the rival's best case): not measured whole, nor again
                extra["prune_train_below"] = round(floor * own_train / default.median, 3)
        res = run(cand, extra, left(), ahead)
        if res.get("status") == "slow-start":
            cand.dropped = (f"decisively behind: its trial process had no figures after {res['waited_s']:,.0f} s, "
                            f"where the script as written's whole run is predicted at about {run_s:,.0f} s (its start "
                            f"and trace, then its training of about {training_s:,.0f} s): its start alone outlasts the "
                            "script's run")
            return
        if res.get("status") == "timeout":  # the budget ended the process before its figures (absorb: no verdict),
            # so it is said as not measured (xception_scratch at 64x64: JAX started with 34 s left, its compile and
            # first two 25-s steps take about 80)
            line = f"{cand.name} (trial process {rep + 1} of {PASSES}): {res.get('error') or 'the budget ran out'}"
            not_measured.extend([line] if line not in not_measured else [])
        absorb(cand, res, default)
        if (res.get("after_fit") or {}).get("status") in ("complete", "incomplete"):
            endings[cand.name] = res["after_fit"]  # the rest of the script ran after the measurement, cut short

    for rep in range(PASSES):
        if rep and settled(default, live):  # nothing left that another pass could decide: on to the next stage
            reasons_early.append(f"the per-process candidates were decided after {rep} pass(es) of trial processes")
            break
        second = lone_leader(default, live) if rep else None
        again = False
        if second is not None and len(default.passes) < 2:  # a winner beats two processes of the script as written
            share = (default.detail.get("contention") or [None])[0]  # unless its one ran on the machine as it was
            if quiet(default):
                reasons_early.append(f"one process of the script as written stands: its measurement lost {share:.1%} "
                                     f"of the machine's CPU time to steal and other processes (under {QUIET:.1%}), so "
                                     "it did not run slow as a whole")
            elif left() >= per_trial:
                reasons_early.append("a second process of the script as written before a winner: its first " + (
                    f"lost {share:.1%} of the machine's CPU time to steal and other processes (at least {QUIET:.1%}: "
                    "it may have run slow as a whole)" if share is not None else
                    "could not tell how much of the machine it had (it may have run slow as a whole)"))
                again = True
                measure(default, rep, ahead=[second])
                second = lone_leader(default, live)
        if second is not None:  # its second process: the in-process stage's trial, which measures it whole as well
            reasons_early.append(f"the per-process candidates were decided after {rep} pass(es) of trial processes, but "
                                 f"for '{second.name}', which leads on one process")
            return reasons_early, not_measured, endings, second
        order = [default, *live] if rep == 0 else [*reversed(live), default] if rep % 2 else [*live, default]

        def due(cand) -> bool:
            if cand is default and (rep == 0 or again):
                return False  # measured first, above
            if cand.error or cand.dropped or (cand.advice and cand.passes):  # advice: one process shows its figure
                return False
            return not (cand is default and settled(default, live))  # a winner decisively ahead in 2 processes of each

        for i, cand in enumerate(order):
            if not due(cand):
                continue
            if left() < (cost_of(cand) if cost_of and cand is not default else per_trial):
                line = (f"{cand.name} (trial process {rep + 1} of {PASSES}): the budget ran out" if cand.passes else
                        f"{cand.name} (no trial process): the budget ran out")  # once, not once a pass
                not_measured += [line] if line not in not_measured else []
                continue
            measure(cand, rep, ahead=_expected(default, live, [c for c in order[i + 1:] if due(c)]))
        top = _top(default, live)
        for c in live:
            if not (top.median and c.median) or c.error or c.advice or c.dropped:
                continue
            unpaid = quiet(c) and cannot_pay(c, default, training_s)  # (tuning/payoff.py)
            small = rep < PASSES - 1 and not ahead_of(c, default) and not_worth_a_pass(c, default, training_s,
                                                                                     2 * per_trial)
            if unpaid:
                c.dropped, c.detail["unpaid"] = f"not worth its process: {unpaid}", True
            elif rep == 0 and c.median < PRUNE * top.median:
                c.dropped = f"{c.median / top.median:.2f}x '{top.name}' in its first trial process: not measured again"
            elif small:
                c.dropped = f"not worth another pass: {small}"
            elif default.median and c.median < (1 + MIN_GAIN) * default.median and len(c.passes) == rep + 1:
                why = second_chance(c, default, live)  # its one process ran busy, or its rounds spread past a gain
                if why:
                    reasons_early.append(f"a second process of '{c.name}' before it is judged: {why}")
                    continue
                where = "its first trial process" if rep == 0 else f"{rep + 1} trial processes"
                c.dropped = (f"no gain in {where} ({c.median:,.1f} against {default.median:,.1f} steps/s as written, "
                             f"{c.median / default.median:.2f}x; a choice needs more than {MIN_GAIN:.0%} beyond the "
                             "spread): not measured again")
            elif rep == 0 and quiet(c) and quiet(default) and not ahead_of(c, default):  # more processes average over
                # processes that ran slow as a whole: neither did (judged on its figures however few: a process of slow
                # epochs gives 2, too few for a choice, so a rival ahead on them gets its second)
                why = second_chance(c, default, live)  # another backend ahead on its median, its rounds spread wide
                if why:
                    reasons_early.append(f"a second process of '{c.name}' before it is judged: {why}")
                    continue
                c.dropped = (f"not ahead beyond the noise in its first trial process ({c.median / default.median:.2f}x "
                             f"the script as written, spreads {c.spread:.0%} and {default.spread:.0%}), the two measured "
                             "on the machine as it was: not measured again")
    if settled(default, live) and live and not reasons_early:
        reasons_early.append("the per-process candidates were decided")
    return reasons_early, not_measured, endings, None


__all__ = ["PASSES", "PRUNE", "QUIET", "SLOW_START", "bar", "lone_leader", "process_stage",
           "quiet", "second_chance", "settled", "start_cap", "unfair", "whole_run", "beyond_trace"]

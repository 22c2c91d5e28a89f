"""The runs of the in-process stage (tuning/measure.py): one candidate's run of about so many steps, its calibration
(warm, then sized to about ``seconds``, or dropped with why) and the interleaved rounds over the calibrated ones, all
from the same weights and optimizer state."""

from __future__ import annotations

import os
import sys
import time
import traceback

from . import first_look, numerics, spe_bound
from .compare import behind, cannot_win, first_round_cuts
from .feeds import last_batch
from .ladder import PRUNE
from .steps import Steps, fit_shape, same_epochs, untimed


def said(exc: BaseException) -> str:
    """A run's exception as its candidate's error says it, with the script's own line it passed through last, where it
    did: the fit a run makes calls the script's callbacks, and one of them failing (a text generator's callback
    sampling a word past its vocabulary from a model trained a few steps) is the script's line to look at, not
    redline's."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    mine = [f for f in traceback.extract_tb(exc.__traceback__)
            if main and os.path.abspath(f.filename) == os.path.abspath(main)]
    at = (f" (at {os.path.basename(mine[-1].filename)}:{mine[-1].lineno}, in the script's code the fit called)"
          if mine else "")
    return f"{type(exc).__name__}: {str(exc)[:240]}{at}"


class StageRuns:
    """What the stage's runs share: the model and its ``fit``, the inputs by name (``feeds``), and what they found.

    ``plan``: name -> the steps of its runs in the rounds; ``calib``: name -> its calibration's rate; ``timed``: the
    seconds that rate was read over; ``hosts``: the host's share of a call in its calibration's timed run
    (tuning/spe_bound.py); ``traced``: the seconds its calibration's warm-up spent beyond its steps (a new step
    function traced); ``tails``: the seconds of the step compiled ahead for an epoch's smaller last batch, where it
    was. ``epoch_starts``: the runs time the epoch starts they cross (the input path's: an input changes
    them); the knobs' do not (their epoch starts are the input's: a run of 2 epochs would be timed slower than one of
    1), the whole epochs measure them. ``keep``: the model's state, put back after each run (diagnosis.probe)."""

    def __init__(self, stage: dict, model, fit, feeds: dict, extras: dict, recompile, knobs_of, spe_of):
        self.model, self.fit, self.feeds, self.extras = model, fit, feeds, extras
        self.recompile, self.knobs_of, self.spe_of = recompile, knobs_of, spe_of
        self.trial, self.out, self.log, self.late, self.phase, self.partial = (
            stage[k] for k in ("trial", "out", "log", "late", "phase", "partial"))
        self.opener, self.seconds, self.rounds = stage["opener"], stage["seconds"], stage["rounds"]
        self.finish = stage.get("finish")  # ends the trial with what ``out`` holds (a process of its own), or None
        self.plan, self.calib, self.timed, self.hosts, self.traced, self.tails = {}, {}, {}, {}, {}, {}
        self.epoch_starts, self.marks, self.keep = False, None, None

    def run(self, cand, steps, spe, more=()):
        """About ``steps`` steps; (steps/s from the first execution's end to the last, counting the steps really run;
        seconds). Finite data of an epoch or less: ``steps`` rounded to whole executions, in one epoch. More: whole
        passes over it, each from a fresh iterator as the script's own epochs run, their last execution stopping where
        the data ends. (Several epochs with steps_per_epoch under the data's length would carry one iterator across
        epochs, and an execution cut short there would still be named by its full steps.)"""
        f = self.feeds[cand.get("input", "as written")]
        epochs, per = fit_shape(steps, spe, f.cap, f.endless)
        marks = self.marks = Steps(None if f.endless else f.cap, spe)
        self.fit(self.model, f.x, f.y, batch_size=f.batch_size, epochs=epochs, steps_per_epoch=per,
                 verbose=self.extras["verbose"], callbacks=[*self.extras["callbacks"], marks, *more], **f.kwargs)
        rate, took = marks.steady_rate(self.epoch_starts)
        return rate * f.scale, took  # steps of the script's own batch per second

    def size(self, name, rate, feed, spe, span=None, passes=0):
        """The steps of ``name``'s runs in the rounds: about ``span`` seconds at ``rate``, in whole executions."""
        span = self.seconds if span is None else span
        n = int(rate / feed.scale * span)
        # at least 3 executions, so 2 intervals between their ends; 2 where one interval is long enough to time
        # (slow steps: an execution of spe 8 at a second a step is 8 s)
        execs = 2 if spe / (rate / feed.scale) >= span / 3 else 3
        self.plan[name] = max(execs * spe, n - n % spe)
        if passes and feed.cap and not feed.endless:  # at least ``passes`` whole passes over finite data (an
            # epoch start timed), where they take under 2 x span
            self.plan[name] = max(self.plan[name], min(passes * feed.cap, int(rate / feed.scale * 2 * span)))

    def warm_up(self, cand, feed, spe, n, more=()):
        """A calibration's warm-up, ``n`` steps (its first execution traces): (steps/s, seconds), as run() gives;
        where it can be, the trial's loss check of the script's own compile (numerics.as_warm_up). ``more``: its
        callbacks beyond the step marks (first_look's, which may end it after its first execution)."""
        out = self.out
        marks = self.marks = Steps(None if feed.endless else feed.cap, spe)
        checked = "check" in out  # a check before this warm-up: not this one to put right
        if (not self.knobs_of(cand) and cand.get("input", "as written") == "as written" and not feed.endless
                and fit_shape(n, spe, feed.cap, False) in ((1, n), (1, None if n == feed.cap else n))  # one epoch
                and numerics.as_warm_up(self.trial, out, self.model, self.fit, feed, spe, n, self.opener,
                                        [marks, *more])):
            self.log(f"  the loss check ({n} steps from the shared weights) is the warm-up")
            rate, took = marks.steady_rate(self.epoch_starts)
            return rate * feed.scale, took
        if not checked and "error" in out.get("check", {}):
            self.keep.restore()  # the check failed part way just now: from the state as kept
        return self.run(cand, n, spe, more)

    def _give_up(self, name, into, bar):
        """Where the trial is a process of its own: what ends it with ``name`` decisively behind while its first
        execution still runs (tuning/first_look.Watch), its figure an upper bound."""
        if self.finish is None:
            return None

        def give_up(rate: float, step_s: float) -> None:
            into[name] = {"behind": round(rate, 3), "bar": bar, "took_s": round(step_s, 3), "first_execution": True,
                          "unfinished": True}
            self.finish()

        return give_up

    def calibrate(self, name, cand, into, span=None, passes=0, expect=None, alone=None):
        """Warm, then find a step count that runs about ``span`` seconds; its rate, or the candidate dropped with why.
        ``expect``: executions per second expected (a ladder's step before): where one execution is long enough to
        time, the warm-up is 2 executions (the first traces), not 3. ``alone(warm rate)``: True for the one candidate
        of its trial (no rounds to interleave) whose rounds will be run: its first sized run is a whole ``span``,
        so it can count as its first round (``timed``)."""
        import keras

        span = self.seconds if span is None else span
        calib, log, trial = self.calib, self.log, self.trial
        if self.late():
            self.out["not_measured"].append(f"{name}: the budget ran out")
            return None
        self.phase(f"calibrating {name}")
        try:
            self.recompile(cand)
            spe = self.spe_of(cand)
            feed = self.feeds[cand.get("input", "as written")]
            cap = feed.cap or 10**6
            if spe > cap:
                raise ValueError(f"steps_per_execution={spe} is more than the {cap} steps of an epoch")
            if feed.endless and cap % spe and "steps_per_execution" in self.knobs_of(cand):  # the script's own runs
                raise ValueError(f"steps_per_execution={spe} does not divide the {cap} steps of an epoch over endless "
                                 "data: every epoch would run more steps than the script's")
            # trace/compile and warm in 3 executions; their rate sizes the next run, so a step of a second costs
            # seconds here, not a fixed count of steps. Where the stage has calibrated another candidate, its rate
            # is the one expected (xception_scratch: jit's third warm execution took 28 s, at 0.2x)
            # A rival's bar (half the fastest rate so far) is the least it must run: where even that is slow,
            # 2 executions (JAX at 50 s a step on xception_scratch: its third took 50 s more to say it is behind)
            bar = trial.get("behind_below") if name == "default" else None
            expect = expect or (max(calib.values()) / spe if calib and max(calib.values()) else
                                bar / spe if bar else None)
            t0, n_warm = time.perf_counter(), (2 if expect and 1 / expect >= span / 3 else 3) * spe
            n_warm = numerics.warm_steps(trial, self.out, n_warm, spe, feed.cap, bar)
            look = first_look.callback(bar, spe, log, trial.get("epoch_overhead_s") or 0.0, self._give_up(
                name, into, bar)) if bar and n_warm == 2 * spe and keras.backend.backend() == "jax" else None  # slow
            # steps: a verdict after the first execution, or while it still runs
            warm, warm_took = self.warm_up(cand, feed, spe, n_warm, [look] if look else [])
            self.phase(f"  warm-up of {name}: {n_warm} steps, {warm or 0:,.2f} steps/s after its first execution")
            if look is not None and look.behind is not None:  # (a loss check it cut short is not reported: the
                # trial reports a check only beside the default's figures)
                into[name] = {"behind": round(look.behind, 3), "bar": bar, "took_s": round(look.step_s, 3),
                              "first_execution": True}
                return None
            now = time.perf_counter()
            self.traced[name] = now - t0 - untimed(t0, now) - (n_warm / (warm / feed.scale) if warm else 0.0)
            tail = last_batch(feed)
            if tail is not None and warm and feed.cap / (warm / feed.scale) <= 2.5 * span:  # the runs will reach
                # the epoch's smaller last batch (rounds take whole passes where one takes under 2 x span; the warm
                # rate reads up to a quarter low): its step is compiled now, not in a timed run
                t_tail = time.perf_counter()
                self.fit(self.model, tail[0], tail[1], batch_size=feed.batch_size, epochs=1, verbose=0, **tail[2])
                now = time.perf_counter()  # that shape's compile (and a step): a run pays it too
                self.tails[name] = now - t_tail - untimed(t_tail, now)
            # the warm executions' rate reads low (3 of 4 by 4)
            whole = bool(warm and alone and alone(warm / feed.scale))
            first = 1.25 * span if whole else span / 3
            n = max(3 * spe, int(warm / feed.scale * first) // spe * spe) if warm else max(4 * spe, 16)
            # slow steps: the warm executions already timed enough (their first one, tracing, left out)
            rate, took = (warm, warm_took) if warm and warm_took >= span / 3 else self.run(cand, n, spe)
            while took < span / 3 and n < 10**7:  # grow until the timing is worth something: to about half
                # ``span`` (``span`` alone), at least twice the steps and at most 16 times
                n = max(2, min(16, int(max(first, span / 2) / max(took, 1e-3)) + 1)) * n
                rate, took = self.run(cand, n, spe)
            if whole and span / 3 <= took < 0.75 * span:  # the warm rate read low (a loaded machine): once more,
                # sized by this run's rate, so it is still a whole round (at that round's cost)
                n = max(n + spe, int(n * first / took) // spe * spe)
                rate, took = self.run(cand, n, spe)
            rate, took, out_ = behind(rate, took, bar, span, lambda: self.run(cand, n, spe))  # a rival far behind
            if out_:  # under the fastest so far: never chosen, and its figure says so
                into[name] = {"behind": round(rate, 3), "bar": bar, "took_s": round(took, 3)}
                log(f"  {rate:,.2f} steps/s in its first executions, under {bar:,.2f}: decisively behind")
                return None
            if not rate:
                self.plan[name] = max(3 * spe, n - n % spe)
            else:
                self.size(name, rate, feed, spe, span, passes)
            calib[name], self.timed[name] = rate, took
            self.phase(f"  {name} calibrated: {rate:,.2f} steps/s over {took:.2f} s; {self.plan[name]} steps a round")
            self.hosts[name] = spe_bound.host_share(self.marks.begins, self.marks.ends)
            return rate
        except Exception as exc:  # a candidate the backend cannot run (XLA, memory, ...) is dropped, with why
            into[name] = {"error": said(exc)}
            log(f"  dropped {name}: {type(exc).__name__}: {str(exc)[:120]}")
            self.recompile.knobs = None
            return None
        finally:
            try:
                self.keep.restore()
            except Exception:  # noqa: BLE001  the model may be unusable after a failed compile; the next recompile decides
                log(f"  (state could not be restored after {name})")

    def measure(self, cands, into, reference, rounds=None):
        """Interleaved rounds over the calibrated candidates; steps/s into ``into[name]``. After the first round, a
        candidate under PRUNE x the best is not measured again (it cannot be chosen: a choice needs every round).
        Where the runs time epoch starts, candidates on inputs of as many batches run as many (steps.same_epochs).
        After each round, what is measured so far is reported (``partial()``)."""
        plan, rounds = self.plan, self.rounds if rounds is None else rounds
        if self.epoch_starts:
            feed = {n: self.feeds[c.get("input", "as written")] for n, c in cands.items()}
            plan.update(same_epochs({n: plan[n] for n in cands if n in plan},
                                    {n: self.spe_of(c) for n, c in cands.items()},
                                    {n: (f.cap, f.endless) for n, f in feed.items()}))
        for r in range(rounds):
            if r == 1:
                firsts = {n: into[n]["steps_per_s"][0] for n in cands if n in plan and into.get(n, {}).get("steps_per_s")}
                for n, why in first_round_cuts(firsts, reference, PRUNE).items():
                    into[n]["dropped"] = why
                    plan.pop(n)
                if firsts.keys() - {reference} and not any(n in plan for n in cands if n != reference):
                    break  # every contender is out: nothing left to compare the reference with
            elif r > 1:
                known = {n: into[n]["steps_per_s"] for n in cands
                         if n in plan and len(into.get(n, {}).get("steps_per_s", [])) == r}
                for n, why in cannot_win(known, reference, rounds).items():
                    into[n]["dropped"] = why
                    plan.pop(n)
                if reference in known and not any(n in plan for n in cands if n != reference):
                    break  # every contender is out: nothing left to compare the reference with
            for name, cand in cands.items():
                if name not in plan:
                    continue
                if self.late():  # the trial reports what it has before the parent's deadline
                    self.out["not_measured"].append(f"{name}, round {r + 1}: the budget ran out")
                    continue
                try:
                    self.recompile(cand)
                    rate, took = self.run(cand, plan[name], self.spe_of(cand))
                except Exception as exc:  # failed on a later round: dropped as well
                    self.recompile.knobs = None
                    into[name] = {"error": said(exc)}
                    plan.pop(name)
                    continue
                finally:
                    self.keep.restore()
                rec = into.setdefault(name, {"steps_per_s": [], "steps": plan[name], "knobs": self.knobs_of(cand),
                                             "epoch_starts_timed": self.epoch_starts})
                rec["steps_per_s"].append(round(rate, 3))
                self.phase(f"  round {r + 1}, {name}: {plan[name]} steps, {rate:,.2f} steps/s over {took:.2f} s")
                rec.setdefault("seconds", []).append(round(took, 3))
            self.partial()


__all__ = ["StageRuns"]

"""What tune measured and chose: a candidate with its figures, and the whole result (what `redline run` applies)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .compare import median, ran_quiet, robust_spread, spread


@dataclass
class Candidate:
    name: str
    env: dict = field(default_factory=dict)
    trial: dict = field(default_factory=dict)
    why: str = ""
    runs: list = field(default_factory=list)  # steps/s, all measurements
    error: str | None = None
    detail: dict = field(default_factory=dict)
    passes: list = field(default_factory=list)  # per trial process: its rounds' median (per-process candidates)
    dropped: str | None = None  # why it was not measured further
    advice: str | None = None  # it changes what the script chose itself: measured and shown, never applied (and why)
    train_runs: list = field(default_factory=list)  # steps/s of training steps alone, where runs are of whole epochs
    overhead_s: list = field(default_factory=list)  # per trial process: an epoch's seconds beyond its training steps
    losses: list = field(default_factory=list)  # per trial process: the loss after the numerics check's steps

    def whole(self, gain: float) -> float:
        """What a gain in training steps/s (an input path, steps_per_execution) makes of this candidate's whole epochs:
        the rest of an epoch (validation, callbacks, epoch starts) stays as measured. ``gain`` where nothing beyond
        training was measured."""
        from .as_run import gain_whole

        steps, train = self.detail.get("steps_in_epoch"), median(self.train_runs)
        if not steps or not train or not self.overhead_s:
            return gain
        return gain_whole(train, steps, median(self.overhead_s), gain)

    @property
    def quiet_passes(self) -> list:
        """The medians of the processes that ran on the machine as it was: each lost under compare.QUIET of the CPU
        time to steal and other processes (``detail["contention"]``, one share per process, as ``passes``)."""
        shares = self.detail.get("contention") or []
        return [p for p, s in zip(self.passes, shares) if ran_quiet(s)]

    @property
    def quiet_runs(self) -> list:
        """The rounds of the processes that ran on the machine as it was (``detail["rounds"]``: how many each process
        gave, as ``passes``); empty where that is not known."""
        counts, shares = self.detail.get("rounds") or [], self.detail.get("contention") or []
        if len(counts) != len(self.passes) or sum(counts) != len(self.runs):
            return []
        out, at = [], 0
        for n, share in zip(counts, shares):
            if ran_quiet(share):
                out.extend(self.runs[at:at + n])
            at += n
        return out

    @property
    def figures(self) -> list:
        """What choices rest on: one median per trial process where there were several, else every round."""
        return self.passes if len(self.passes) >= 2 else self.runs

    @property
    def median(self) -> float | None:
        return median(self.figures)

    @property
    def spread(self) -> float:
        """(max - min) / median of the figures, or of every round where that is wider: the medians of two or three
        processes can agree by chance while the rounds behind them spread as widely as separate runs do
        (cnn_augment: two process medians 0.7% apart, their rounds 27%). The rounds' spread leaves out the lowest and
        highest of 6 or more (compare.robust_spread). 0 with fewer than 2."""
        return spread_of(self.figures, self.runs)


def spread_of(figures, runs) -> float:
    """The wider of the processes' spread (``figures``) and their rounds' robust spread (``runs``)."""
    return max(spread(figures), robust_spread(runs))


def fair(cand: Candidate, default: Candidate) -> tuple:
    """The figures two candidates are compared on: the medians of their processes that ran on the machine as it was,
    where both have such processes; else their figures. A process that lost a share of the machine to steal and other
    processes can run about 2x slow as a whole."""
    a, b = cand.quiet_passes, default.quiet_passes
    return (a, b) if a and b else (cand.figures, default.figures)


def fair_spreads(cand: Candidate, default: Candidate) -> tuple:
    """The spreads that go with ``fair``'s figures: where the two are compared on their quiet processes, the spread of
    those processes and their rounds (a process that lost 50% of the machine widens a candidate's spread as much as it
    slows its median: imbalanced_mlp's JAX at 32.3 steps/s quiet against 20.6 as written was "within the noise" of
    its two busy processes at 18.6-18.8); else Candidate.spread."""
    def quiet_spread(c):
        rounds = c.quiet_runs
        return spread_of(c.quiet_passes, rounds) if rounds else c.spread

    if cand.quiet_passes and default.quiet_passes:
        return quiet_spread(cand), quiet_spread(default)
    return cand.spread, default.spread


@dataclass(frozen=True)
class Choice:
    """Exactly what `redline run` applies for a tuned script, and nothing else: the chosen trial process's environment
    variables, its precision policy and parallel maps, the input path and the Model.compile defaults chosen in it.
    Saved as a dict (``to_dict``) in the tuned-choice file and read back with ``from_dict``."""

    env: dict = field(default_factory=dict)
    parallel_map: int | None = None
    precision: str | None = None
    compile: dict = field(default_factory=dict)
    input: dict | None = None
    per_fit: dict = field(default_factory=dict)  # fit fingerprint -> its own compile knobs ({}: the script's own)
    release: bool = False  # on TensorFlow, finished tf.data iterators dropped off the epoch loop, as in every trial
    build_ahead: bool = False  # on TensorFlow, a model's state built before its first traced step, as in every trial
    fits: tuple = ()  # the fingerprints of the fits the tune saw: a fit under `run` with another is not one it measured

    @classmethod
    def from_dict(cls, d: dict) -> "Choice":
        """ValueError where a part is not what to_dict writes (a hand-edited or damaged file)."""
        parts = {k: d.get(k) or {} for k in ("env", "compile", "per_fit")}
        if not all(isinstance(v, dict) for v in parts.values()) or not all(
                isinstance(v, dict) for v in parts["per_fit"].values()):
            raise ValueError("its env, compile and per_fit must be mappings (per_fit: of fingerprints to mappings)")
        fits = d.get("fits") or []
        if not isinstance(fits, list) or not all(isinstance(f, str) for f in fits):
            raise ValueError("its fits must be a list of fingerprints")
        return cls(env=dict(d.get("env") or {}), parallel_map=d.get("parallel_map"), precision=d.get("precision"),
                   compile=dict(d.get("compile") or {}), input=d.get("input"), per_fit=dict(d.get("per_fit") or {}),
                   release=bool(d.get("release")), build_ahead=bool(d.get("build_ahead")), fits=tuple(fits))

    def to_dict(self) -> dict:
        return {"env": dict(self.env), "parallel_map": self.parallel_map, "precision": self.precision,
                "compile": dict(self.compile), "input": self.input, "per_fit": dict(self.per_fit),
                "release": self.release, "build_ahead": self.build_ahead, "fits": list(self.fits)}

    def parts(self) -> list:
        """What it changes, in words, in the order run applies it; empty: the script as written."""
        from ..data.rewrite import describe

        out = [f"{k}={v}" for k, v in self.env.items()]
        if self.precision:
            out.append(f"precision {self.precision}")
        if self.parallel_map:
            out.append(f"parallel Dataset.map ({self.parallel_map} calls, order kept)")
        if self.input:
            out.append(describe(self.input))
        if self.compile:
            out.append("Model.compile defaults " + ", ".join(f"{k}={v!r}" for k, v in self.compile.items())
                       + " (where the script passes none)")
        for fp, knobs in self.per_fit.items():
            out.append(f"fit {fp[:6]}: " + (", ".join(f"{k}={v!r}" for k, v in knobs.items()) or "its own compile arguments"))
        return out


@dataclass
class TuneResult:
    script: str
    args: list
    budget_s: float
    elapsed_s: float
    default: Candidate
    processes: list
    inprocess: list
    chosen_process: Candidate
    chosen_knobs: Candidate | None
    reasons: list
    not_measured: list
    status: str = "ok"
    script_output: str = ""
    inputs: list = field(default_factory=list)  # the input-path stage: "as written" first
    chosen_input: Candidate | None = None
    advice: list = field(default_factory=list)  # faster settings that change the script's own choices: not applied
    touched: list = field(default_factory=list)  # files in the user's folders that changed during tuning all the same
    sources: list = field(default_factory=list)  # the user's modules and settings files it used (tuning/sources.py)
    training_s: float | None = None  # the first fit's training as written, predicted from the first trial
    needs_s: float | None = None  # what deciding every candidate needs where no rival leads, where the budget was short
    whole: dict | None = None  # the in-process choice against the script's own, in whole epochs (inprocess._judge_whole)
    per_fit: dict = field(default_factory=dict)  # other fits' fingerprints -> their own chosen knobs
    fits: list = field(default_factory=list)  # the script's fits as the first trial recorded them (tuning/fits.py)
    stage_drops: list = field(default_factory=list)  # tf.data iterators the in-process stage released (tuning.stall)

    def chosen(self) -> Choice:
        """What redline run applies: the chosen process's settings, the input path and the compile knobs chosen in it."""
        trial = dict(self.chosen_process.trial)
        compile_ = dict(self.chosen_knobs.trial.get("knobs", {})) if self.chosen_knobs else {}
        # a fit that keeps the script's own compile arguments is worth naming only where the others get defaults
        return Choice(env=dict(self.chosen_process.env), parallel_map=trial.get("parallel_map"),
                      precision=trial.get("precision"), compile=compile_,
                      input=self.chosen_input.trial["input"] if self.chosen_input else None,
                      per_fit={fp: dict(k) for fp, k in self.per_fit.items() if k or compile_},
                      release=True, build_ahead=True,  # every trial on TensorFlow ran so (harness)
                      fits=tuple(dict.fromkeys(f["fingerprint"] for f in self.fits if f.get("fingerprint"))))

    def choice(self) -> dict:
        """chosen() as saved in the tuned-choice file."""
        return self.chosen().to_dict()

    def ratio(self) -> float | None:
        """What the choice adds to the script's training: steady_ratio() over its fits, where fits after the first
        trace anew (tuning.fits.with_traces)."""
        from .fits import with_traces
        from .payoff import refit_s
        from .sizing import fit_seconds

        steady = self.steady_ratio()
        if not steady or not self.fits:
            return steady
        base = median(fair(self.chosen_process, self.default)[1])
        plain = self.steady_ratio(knobs=False) if self.chosen_knobs is not None else None  # fits kept at their own
        apart = {fp: plain for fp, knobs in self.per_fit.items() if not knobs} if plain else None
        # each fit at its own step time; an EarlyStopping fit at the fewest epochs it runs: the gain that is sure
        written = fit_seconds(self.fits, self.default.detail.get("fit_index"), base, least=True)
        return with_traces(steady, self.fits, base, refit_s(self.default), refit_s(self.chosen_process), apart=apart,
                           once=self.once_s(), written=written, python_extra=self.python_extra())

    def python_extra(self) -> float:
        """Seconds `python` pays more than any run under redline at each later fit that traces anew, where the script
        as written runs on TensorFlow: its second trace (tuning.fits.python_extra_s, timed in the first trial)."""
        if self.default.detail.get("backend", "tensorflow") != "tensorflow":
            return 0.0
        return float(self.default.detail.get("python_extra_s") or 0.0)

    def once_s(self) -> float:
        """Seconds the in-process choice's compile costs a run beyond the script's own, each time a fit compiles it
        (tuning.inprocess.once_cost); 0.0 where none was chosen or measured."""
        return ((self.whole or {}).get("once_s") or 0.0) if self.chosen_knobs or self.chosen_input else 0.0

    def start_cost(self) -> float:
        """Seconds a run's start costs under the choice beyond the script as written's: the chosen process's compile
        (tuning.payoff.process_once) and the in-process pick's (once_s)."""
        from .payoff import process_once

        return process_once(self.chosen_process, self.default) + self.once_s()

    def python_wait(self, base: float | None = None) -> dict | None:
        """The epoch-start wait `python script.py` pays on TensorFlow and no trial did (tuning.stall): modelled from the
        drops of the tune's TensorFlow processes (the in-process stage's too), where the script's epochs each make an
        iterator the release took, at ``base`` steps/s (unless given, the median the ratio takes for it: fair() against
        the chosen process, so the wait shown is the one in the ratio); None elsewhere, and where the script as written
        runs on another backend (`python` pays no such wait there: a vision transformer pinned to JAX was predicted
        1.07x for a run as written from the TensorFlow candidate's drops)."""
        from .stall import python_factor, timed_factor

        if self.default.detail.get("backend", "tensorflow") != "tensorflow":
            return None
        base = base or median(fair(self.chosen_process, self.default)[1])
        steps = self.default.detail.get("steps_in_epoch")
        timed = timed_factor(steps / base if base and steps else None, self.default.detail.get("python_drops"))
        if timed:  # `python`'s epoch starts, timed in the script as written's processes
            return timed
        drops = [d for c in self.processes for r in c.detail.get("released") or [] for d in r.get("drops") or []]
        drops += self.stage_drops
        return python_factor(steps / base if base and steps else None, drops,
                             bool(self.default.detail.get("iterator_each_epoch")))

    def predicted_steps_per_s(self) -> dict | None:
        """The steps/s behind ratio(): {"python": the script as written's epochs under `python` (its trial processes'
        figures, less its modelled epoch-start wait; over the script's training where later fits trace anew, each
        such fit's start counted as ratio() counts it), "run": the choice's under `redline run`, at ratio() to it};
        None where steady_ratio() is. What a benchmark compares with delivered figures (epochs after a run's first,
        each later fit's start included), to tell which side a miss is on."""
        from .fits import size
        from .payoff import refit_s

        steady = self.steady_ratio()
        base = median(fair(self.chosen_process, self.default)[1])
        if not steady or not base:
            return None
        wait = self.python_wait(base)
        python = base / (wait["factor"] if wait else 1.0)
        later = sum(1 for f in self.fits[1:] if f.get("traces"))
        steps, theirs = sum(size(f) for f in self.fits), refit_s(self.default)
        if later and steps and theirs:
            python = steps / (steps / python + later * (theirs + self.python_extra()))
        return {"python": round(python, 3), "run": round(python * (self.ratio() or steady), 3)}

    def steady_ratio(self, knobs: bool = True) -> float | None:
        """The choice's epochs against the script as written's under `python` (its epoch-start waits included: see
        python_wait()), once both are traced; without ``knobs``, those of a fit that keeps the script's own compile
        arguments (the chosen process and input path alone)."""
        mine, theirs = fair(self.chosen_process, self.default)
        base, p = median(theirs), median(mine)
        if not base or not p:
            return None
        wait = self.python_wait(base)
        p *= wait["factor"] if wait else 1.0
        if knobs and self.whole and (self.chosen_knobs is not None or self.chosen_input is not None):
            return p / base * self.whole["gain"]  # the in-process choice measured in whole epochs, as the run runs
        gain = 1.0  # in training steps/s: the input path and the compile knobs, measured in steps
        if self.chosen_input is not None:
            gain *= self.chosen_input.median / self.inputs[0].median
        if knobs and self.chosen_knobs is not None and self.inprocess:
            inner_default = self.inprocess[0]
            if inner_default.median and self.chosen_knobs.median:
                gain *= self.chosen_knobs.median / inner_default.median
        return p / base * (self.chosen_process.whole(gain) if gain != 1.0 else 1.0)

    def to_dict(self) -> dict:
        from .sizing import payback

        def c(x):
            return {"name": x.name, "why": x.why, "env": x.env, "steps_per_s": x.runs, "passes": x.passes, "median": x.median,
                    "spread": round(x.spread, 4), "error": x.error,
                    **({"train_steps_per_s": x.train_runs, "overhead_s": x.overhead_s} if x.train_runs else {}),
                    **({"losses": x.losses} if x.losses else {}), "dropped": x.dropped, "detail": x.detail,
                    "advice": x.advice,
                    **({"input": x.trial["input"]} if x.trial.get("input") else {})}
        return {"schema": "redline.tune/1", "script": self.script, "args": self.args, "status": self.status,
                "budget_s": self.budget_s, "elapsed_s": round(self.elapsed_s, 1),
                "processes": [c(x) for x in self.processes], "inputs": [c(x) for x in self.inputs],
                "inprocess": [c(x) for x in self.inprocess],
                "chosen": {"process": self.chosen_process.name, "knobs": self.chosen_knobs.name if self.chosen_knobs else None,
                           "input": self.chosen_input.name if self.chosen_input else None,
                           "settings": self.choice(), "ratio": self.ratio(), "steady_ratio": self.steady_ratio(),
                           "python_wait": self.python_wait(), "predicted_steps_per_s": self.predicted_steps_per_s()},
                "reasons": self.reasons, "not_measured": self.not_measured, "advice": self.advice,
                "touched": self.touched, "sources": self.sources, "training_s": self.training_s, "whole": self.whole,
                "needs_s": self.needs_s, "payback": payback(self.training_s, self.ratio(), self.elapsed_s, self.start_cost())}


__all__ = ["Candidate", "Choice", "TuneResult"]

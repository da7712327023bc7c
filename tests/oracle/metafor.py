"""R's metafor as the test oracle for the pooled numbers.

One ``Rscript tests/oracle/metafor.R`` process serves a whole test session (fixture ``metafor``
in tests/conftest.py): cases go in as a batch, answers come back per case. Each case is fitted
with ``rma(measure="PLO", method="PM", test="knha")`` and ``test="adhoc"``, ``rma(..., "DL")``,
``rma.glmm(measure="PLO")`` and ``predict()``, with optimiser tolerances tightened so that a
comparison to 1e-6 tests the model, not the optimiser.

Where the tools differ by design, :func:`disagreements` says so and compares like with like:

- the prediction interval: metafor 3.8's ``predict()`` uses t(k-1) and the HKSJ-scaled standard
  error with ``test="knha"``, and z for ``rma.glmm``; Betacell publishes the Cochrane Handbook's
  mu +- t(k-2) sqrt(tau^2 + SE^2) (Higgins, Thompson & Spiegelhalter 2009). The oracle computes
  that formula from metafor's own mu, SE and tau^2, and the native ``predict()`` interval is
  reported beside it;
- every cohort at 0 events (or at all events): ``rma.glmm`` stops ("Cannot fit ML model": the
  likelihood has no finite maximum); Betacell publishes the summed counts with their exact
  interval, compared with R's ``binom.test``;
- the binomial-normal model's standard error: lme4 (and so metafor) takes it from a Hessian of
  the deviance by central differences with step 1e-4, which carries the rounding of lme4's inner
  iterations (about 1e-5 relative when tau^2 is large). The oracle also computes that Hessian
  with numDeriv's Richardson extrapolation on lme4's own deviance function at metafor's optimum;
  the CI is compared with that to 1e-6, and with metafor's printed CI to 1e-4;
- a binomial-normal fit whose tau^2 runs past 100: Betacell treats it as no finite maximum and
  falls back to the continuity-corrected PM-HKSJ model (compared with ``test="adhoc"``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from pathlib import Path

SCRIPT = Path(__file__).with_name("metafor.R")
TOLERANCE = 1e-6
GLMM_TAU2_LIMIT = 100.0  # binomial_normal.TAU_LIMIT ** 2


class MetaforMissing(RuntimeError):
    pass


def expit(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return 1 / (1 + math.exp(-value))


class Metafor:
    """A running ``Rscript`` answering cases; :meth:`fit` sends a batch and waits for it."""

    def __init__(self, process: subprocess.Popen, version: str) -> None:
        self.process = process
        self.version = version
        self.lock = threading.Lock()

    @classmethod
    def start(cls) -> Metafor:
        rscript = shutil.which("Rscript")
        if rscript is None:
            raise MetaforMissing(
                "Rscript is not installed: apt-get install -y --no-install-recommends "
                "r-cran-metafor r-cran-lme4 (see the README's install notes)")
        process = subprocess.Popen([rscript, "--vanilla", str(SCRIPT)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "LC_ALL": "C"})
        first = process.stdout.readline()
        if not first.startswith("READY metafor"):
            process.kill()
            raise MetaforMissing(f"R's metafor did not start ({first.strip()!r}; "
                                 f"{process.stderr.read()[-500:].strip()}): install "
                                 "r-cran-metafor and r-cran-lme4")
        return cls(process, first.split()[2])

    def fit(self, cases: dict[str, tuple[list[int], list[int]]]) -> dict[str, dict]:
        """{case id: (events, totals)} -> {case id: {name: value}} (floats; 'glmm_error' and
        'error' stay text)."""
        lines = [f"{case}\t{','.join(map(str, events))}\t{','.join(map(str, totals))}\n"
                 for case, (events, totals) in cases.items()]
        with self.lock:
            writer = threading.Thread(target=self._write, args=(lines,))
            writer.start()
            answers = {}
            while (line := self.process.stdout.readline()) and line.strip() != "END":
                case, *fields = line.rstrip("\n").split("\t")
                answers[case] = dict(_parsed(field) for field in fields)
            writer.join()
        missing = set(cases) - set(answers)
        if missing:
            raise RuntimeError(f"metafor answered no line for {sorted(missing)[:5]}; "
                               f"stderr: {self.process.stderr.read()[-500:]}")
        return answers

    def _write(self, lines: list[str]) -> None:
        self.process.stdin.writelines(lines)
        self.process.stdin.write("END\n")
        self.process.stdin.flush()

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _parsed(field: str) -> tuple[str, object]:
    name, _, value = field.partition("=")
    if name in {"glmm_error", "error"}:
        return name, value
    return name, math.nan if value == "NA" else float(value)


def expected_model(events: list[int], totals: list[int], answer: dict) -> str:
    """Which model Betacell must have used for these counts: 'exact', 'single', 'glmm',
    'pm_corrected' (the binomial-normal model has no finite maximum) or 'pm'."""
    if len(events) == 1:
        return "single"
    if all(e == 0 for e in events) or all(e == n for e, n in zip(events, totals, strict=True)):
        return "exact"
    if any(e in (0, n) for e, n in zip(events, totals, strict=True)):
        glmm_ok = "glmm_error" not in answer and answer["glmm_tau2"] <= GLMM_TAU2_LIMIT
        return "glmm" if glmm_ok else "pm_corrected"
    return "pm"


def disagreements(row: dict, events: list[int], totals: list[int], answer: dict) -> list[str]:
    """Where a pooled row (estimate, CI, PI, tau2, I2, and the models beside) differs from
    metafor by more than 1e-6 (proportions, tau2 on the logit scale, I2 as a fraction)."""
    assert "error" not in answer, answer["error"]
    model = expected_model(events, totals, answer)
    expected: dict[str, float | None] = {}
    method = row["method"] or ""
    problems = []
    if model in {"single", "exact"}:
        expected.update(estimate=sum(events) / sum(totals), ci_low=answer["exact_low"],
                        ci_high=answer["exact_high"])
        wanted = "Clopper-Pearson" if model == "single" else "summed counts"
        if model == "exact" and "glmm_error" not in answer:
            problems.append(f"metafor fitted a GLMM for all-or-none counts: {answer}")
    elif model == "glmm":
        expected.update(
            estimate=expit(answer["glmm_beta"]), ci_low=expit(answer["glmm_precise_low"]),
            ci_high=expit(answer["glmm_precise_high"]), tau2=answer["glmm_tau2"],
            i2=answer["glmm_i2"] / 100, pi_low=expit(answer["glmm_pi_low"]),
            pi_high=expit(answer["glmm_pi_high"]))
        wanted = "binomial-normal random-effects model"
    else:
        expected.update(
            estimate=expit(answer["pm_beta"]), ci_low=expit(answer["adhoc_low"]),
            ci_high=expit(answer["adhoc_high"]), tau2=answer["pm_tau2"],
            i2=answer["pm_i2"] / 100, pi_low=expit(answer["pm_pi_low"]),
            pi_high=expit(answer["pm_pi_high"]))
        wanted = "Paule-Mandel" if model == "pm" else "0.5 continuity correction: Paule-Mandel"
    if model in {"glmm", "pm", "pm_corrected"}:
        expected.update(estimate_dl=expit(answer["dl_beta"]), ci_low_dl=expit(answer["dl_low"]),
                        ci_high_dl=expit(answer["dl_high"]), tau2_dl=answer["dl_tau2"])
        if "glmm_error" not in answer and answer["glmm_tau2"] <= GLMM_TAU2_LIMIT:
            expected.update(estimate_glmm=expit(answer["glmm_beta"]),
                            ci_low_glmm=expit(answer["glmm_precise_low"]),
                            ci_high_glmm=expit(answer["glmm_precise_high"]),
                            tau2_glmm=answer["glmm_tau2"])
            for ours, native in (("ci_low_glmm", "glmm_low"), ("ci_high_glmm", "glmm_high")):
                if row.get(ours) is None or abs(row[ours] - expit(answer[native])) > 1e-4:
                    problems.append(f"{ours}: ours {row.get(ours)}, metafor's own interval "
                                    f"{expit(answer[native])} (step-1e-4 Hessian)")
    if wanted not in method:
        problems.append(f"method should name {wanted!r}: {method!r}")
    for name, value in expected.items():
        ours = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if ours is not None and not (isinstance(ours, float) and math.isnan(ours)):
                problems.append(f"{name}: metafor has none, ours {ours}")
            continue
        if ours is None or not abs(float(ours) - value) <= TOLERANCE:
            problems.append(f"{name}: ours {ours}, metafor {value}")
    return problems

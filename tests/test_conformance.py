"""The conformance command: exit codes, reports, and that it catches real faults."""

from __future__ import annotations

import importlib.resources
import json

import jsonschema
import numpy as np
import pytest
from portable_dl.conformance import broadcasting, report, runner
from portable_dl.conformance.cli import main

import portable_dl


def test_the_reference_answers_the_classic_exercise_as_a_person_would():
    numpy_backend = portable_dl.backend("numpy")
    for shape1, shape2, answer in broadcasting.CLASSIC:
        outcome = broadcasting.binary_outcome(numpy_backend, "float64", "add", shape1, shape2, 0)
        if answer == "works":
            assert outcome["raises"] == "nothing" and outcome["shape"] == np.broadcast_shapes(shape1, shape2)
        else:
            assert outcome["raises"] == "BroadcastError", (shape1, shape2)


def test_a_quick_run_on_numpy_passes_and_exits_0(capsys):
    assert main(["--backends", "numpy", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "broadcasting" in out and "gradients" in out and "0 failed" in out


def test_usage_errors_exit_2(capsys):
    assert main(["--backends", "numpy,not-a-backend"]) == 2
    assert "unknown backend not-a-backend" in capsys.readouterr().err
    assert main(["--family", "colours"]) == 2
    assert main(["--backend-module", "no_such_module:create"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["--format", "yaml"])
    assert exited.value.code == 2


def test_a_bad_backend_module_exits_2_with_one_line_naming_the_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = {
        "no_such_module_xyz:create": "cannot import no_such_module_xyz: ModuleNotFoundError",
        "raises_on_import:create": "cannot import raises_on_import: RuntimeError: broken at import",
        "misbehaving_backends:no_such_factory": "misbehaving_backends has no callable no_such_factory",
        "misbehaving_backends:factory_raises": "the factory raised RuntimeError: this factory is broken",
        "misbehaving_backends:returns_no_backend": "the factory returned object, not a portable_dl Backend",
        "no-colon": "MODULE:FACTORY",
    }
    for spec, problem in problems.items():
        assert main(["--backends", "numpy", "--backend-module", spec, "--quick"]) == 2, spec
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err and err.startswith("portable-dl conformance: error: "), err


def test_a_hanging_case_fails_after_the_timeout_and_the_run_goes_on(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = main(
        [
            "--backends",
            "numpy",
            "--backend-module",
            "misbehaving_backends:hanging_tanh",
            "--family",
            "compile,broadcasting",
            "--quick",
            "--case-timeout",
            "1",
            "--jobs",
            "1",
            "--format",
            "json",
            "--output",
            str(path),
        ]
    )
    assert code == 1
    rows = json.loads(path.read_text())["results"]
    hung = [r for r in rows if r["backend"] == "hanging-tanh" and r["status"] == "fail"]
    assert hung and all(r["message"] == "timed out after 1 s (--case-timeout)" for r in hung), hung
    assert {r["family"] for r in hung} == {"compile"}  # broadcasting uses no tanh: those rows ran on
    assert [
        r for r in rows if r["backend"] == "hanging-tanh" and r["family"] == "broadcasting" and r["status"] == "pass"
    ]
    assert all(r["status"] != "fail" for r in rows if r["backend"] == "numpy")
    assert max(r["seconds"] for r in hung) < 5


def test_a_backend_that_cannot_be_created_fails_its_rows_and_the_others_run():
    from misbehaving_backends import factory_raises

    portable_dl.register_backend("explodes-on-creation", factory_raises)
    run = runner.run_backend(
        "explodes-on-creation", families=["ops", "compile"], quick=True, seed=0, dtypes=["float32", "float64"]
    )
    assert run.note["available"] is False and "RuntimeError: this factory is broken" in run.note["reason"]
    assert [(r.family, r.dtype, r.status) for r in run.results] == [
        ("ops", "float32", "fail"),
        ("ops", "float64", "fail"),
        ("compile", "float32", "fail"),
        ("compile", "float64", "fail"),
    ]
    assert report.exit_code(run.results) == 1


def test_data_dir_problems_are_usage_errors(tmp_path, capsys, monkeypatch):
    assert main(["--backends", "numpy", "--family", "training", "--data-dir", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (tmp_path / name).write_bytes(b"\x1f\x8b\x08 not really gzip")
    assert main(["--backends", "numpy", "--family", "training", "--quick", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and "Traceback" not in err, err


def test_without_mnist_the_training_family_trains_on_synthetic_data(tmp_path, capsys, monkeypatch):
    from portable_dl.conformance import training

    monkeypatch.delenv("PORTABLE_DL_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    training.training_data.cache_clear()
    try:
        assert (
            main(
                [
                    "--backends",
                    "numpy",
                    "--family",
                    "training",
                    "--quick",
                    "-v",
                    "--jobs",
                    "1",
                    "--data-dir",
                    str(tmp_path),
                ]
            )
            == 0
        )
    finally:
        training.training_data.cache_clear()
    out = capsys.readouterr().out
    assert "on synthetic data (MNIST absent)" in out and " skip " not in out


def test_json_and_markdown_reports(tmp_path, capsys):
    json_path, markdown_path = tmp_path / "report.json", tmp_path / "report.md"
    assert (
        main(
            [
                "--backends",
                "numpy",
                "--family",
                "broadcasting",
                "--quick",
                "--format",
                "json",
                "--output",
                str(json_path),
            ]
        )
        == 0
    )
    document = json.loads(json_path.read_text())
    schema = json.loads((importlib.resources.files("portable_dl.conformance") / "schema.json").read_text())
    jsonschema.validate(document, schema)
    assert document["schema"] == report.SCHEMA == "portable-dl/conformance/1"
    assert document["exit_code"] == 0 and document["summary"]["failed"] == 0
    assert document["summary"]["passed"] == len([r for r in document["results"] if r["status"] == "pass"]) > 0
    row = document["results"][-1]
    assert set(row) >= {
        "case",
        "family",
        "backend",
        "dtype",
        "status",
        "max_abs_error",
        "max_rel_error",
        "tolerance",
        "message",
    }
    assert document["summary"]["matrix"]["broadcasting"]["numpy"]["failed"] == 0
    assert (
        main(
            [
                "--backends",
                "numpy",
                "--family",
                "ops",
                "--quick",
                "--format",
                "markdown",
                "--output",
                str(markdown_path),
            ]
        )
        == 0
    )
    text = markdown_path.read_text()
    assert text.startswith("# portable-dl conformance") and "| ops |" in text


def test_a_backend_without_float64_is_reported_as_skipped_not_passed():
    class NoFloat64(type(portable_dl.backend("numpy"))):
        name = "no-float64"

        def _unsupported_dtype_reason(self, name):
            return "no float64 here" if name == "float64" else None

    case = broadcasting.classic_cases()[0]
    result = runner.run_case(case, NoFloat64(), "float64", runner.Reference())
    assert result.status == "skip" and "float64" in result.message


@pytest.mark.parametrize(
    "factory, family, failing_case",
    [
        ("wrong_tanh_gradient", "gradients", "gradients/tanh"),
        ("accepts_rows_broadcast", "broadcasting", "broadcasting/classic (4, 3)+(4,) fails"),
        ("sum_in_wrong_dtype", "ops", "ops/sum axis=None"),
    ],
)
def test_the_suite_catches_a_broken_backend(capsys, factory, family, failing_case):
    code = main(["--backends", "numpy", "--backend-module", f"broken_backends:{factory}", "--family", family])
    out = capsys.readouterr().out
    assert code == 1
    failing_rows = [line for line in out.splitlines() if " FAIL " in f" {line} "]
    assert any(line.startswith(failing_case + " ") and "broken-" in line for line in failing_rows), out[:3000]
    assert not any(":cpu" in line and line.split()[1].startswith("numpy") for line in failing_rows)


class AdamWithoutBiasCorrection:
    """Adam as MLX's default: no bias correction. Built on the real Adam so that only
    the fault differs."""

    def __new__(cls, *args, **kwargs):
        from portable_dl.optimizers import adam

        class Broken(adam.Adam):
            def update_single(self, param, grad, slots, lr, t, xp):
                beta1, beta2 = self.betas
                m = beta1 * slots["exp_avg"] + (1.0 - beta1) * grad
                v = beta2 * slots["exp_avg_sq"] + (1.0 - beta2) * grad * grad
                return param - lr * m / (xp.sqrt(v) + self.eps), {"exp_avg": m, "exp_avg_sq": v}

        return Broken(*args, **kwargs)


def test_the_suite_catches_an_optimizer_missing_bias_correction(monkeypatch, capsys):
    # Optimizers are front-end code shared by every backend, so the fault is planted in the
    # optimizer; the suite's reference trajectories do not use the front end and catch it.
    import portable_dl.optimizers

    monkeypatch.setattr(portable_dl.optimizers, "Adam", AdamWithoutBiasCorrection)
    code = main(["--backends", "numpy", "--family", "optimizers", "--quick"])
    out = capsys.readouterr().out
    assert code == 1
    failing = [line.split()[0] for line in out.splitlines() if " FAIL " in line]
    assert "optimizers/Adam" in failing and "optimizers/NAdam" not in failing, out[:2000]


def test_worker_processes_give_the_same_rows_as_one_process(tmp_path, capsys, monkeypatch):
    # numpy split into one work unit per family (as JAX is), the broken backend whole: three
    # units on two workers must give the rows of one process, in the same order.
    monkeypatch.setattr(runner, "SPLIT_BY_FAMILY", ("numpy",))
    rows = {}
    for jobs in ("1", "2"):
        path = tmp_path / f"jobs{jobs}.json"
        code = main(
            [
                "--backends",
                "numpy",
                "--backend-module",
                "broken_backends:sum_in_wrong_dtype",
                "--family",
                "ops,broadcasting",
                "--quick",
                "--jobs",
                jobs,
                "--format",
                "json",
                "--output",
                str(path),
            ]
        )
        assert code == 1
        rows[jobs] = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(path.read_text())["results"]]
    assert rows["1"] == rows["2"] and len(rows["1"]) > 100
    assert [r["family"] for r in rows["2"] if r["backend"] == "numpy"][0] == "ops"  # the order asked for


def test_work_units_split_only_the_compile_bound_backends_costliest_first():
    units = runner.work_units(["numpy", "jax", "torch"], ["ops", "gradients", "training"])
    assert units == [
        ("jax", ["gradients"]),
        ("jax", ["training"]),
        ("jax", ["ops"]),
        ("torch", ["ops", "gradients", "training"]),
        ("numpy", ["ops", "gradients", "training"]),
    ]

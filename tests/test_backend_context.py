"""Which backend answers ``backend_of`` when two own the same arrays: ``portable_dl.using``,
``value_and_grad`` and ``compile`` make it the one the caller works with, and the
conformance runner tests exactly the backend it names (issue 11.1).

The second backend is a wrapper around the backend under test, named differently and
created AFTER it, whose namespace records every call (or carries a planted fault)."""

from __future__ import annotations

import itertools
import types

import numpy as np
import pytest
from portable_dl.conformance import compiling, front_end, runner, training
from portable_dl.conformance import optimizers as optimizers_family

import portable_dl
from portable_dl import activations, losses, nn, optimizers
from portable_dl.registry import backend_of, register_backend, using
from portable_dl.training import make_train_step

_serial = itertools.count()


def wrapper_of(backend, wrap):
    """A backend of ``backend``'s class and arrays, named ``<name>-wrapped-N``, whose
    namespace is ``backend.xp`` with every function passed through ``wrap(name, f)``;
    registered and created now, after ``backend``."""
    original = backend.xp
    names = {name: getattr(original, name) for name in dir(original) if not name.startswith("__")}
    names = {name: wrap(name, f) if callable(f) and not isinstance(f, type) else f for name, f in names.items()}
    names["__array_namespace_info__"] = original.__array_namespace_info__
    namespace = types.SimpleNamespace(**names)

    class Wrapped(type(backend)):
        name = f"{backend.name}-wrapped-{next(_serial)}"

        @property
        def xp(self):
            return namespace

    register_backend(Wrapped.name, lambda device=None: Wrapped(device))
    return portable_dl.backend(Wrapped.name)


def recording_wrapper(backend):
    calls: list[str] = []

    def wrap(name, f):
        def recorded(*args, **kwargs):
            calls.append(name)
            return f(*args, **kwargs)

        return recorded

    return wrapper_of(backend, wrap), calls


def use_builtin(backend):
    """Work with the built-in backend, so that it is the most recently used one."""
    with using(backend):
        pass


def test_using_decides_which_backend_answers_and_nests():
    numpy_backend = portable_dl.backend("numpy")
    first, _ = recording_wrapper(numpy_backend)
    second, _ = recording_wrapper(numpy_backend)
    x = np.ones(3)
    assert backend_of(x) is second  # the most recently created
    with using(first):
        assert backend_of(x, 2.0) is first and portable_dl.registry.current_backend() is first
        with using(numpy_backend):
            assert backend_of(x) is numpy_backend
        assert backend_of(x) is first
    assert portable_dl.registry.current_backend() is None
    assert backend_of(x) is numpy_backend  # outside any block: the one entered last
    with using(first):
        pass
    assert backend_of(x) is first
    with pytest.raises(TypeError, match="at least one array"):
        backend_of(1.0, None)


def test_the_front_end_runs_on_the_namespace_of_the_backend_in_use(backend):
    wrapped, calls = recording_wrapper(backend)
    use_builtin(backend)
    rng = np.random.default_rng(0)
    x, labels = wrapped.asarray(rng.normal(size=(4, 3)), "float32"), wrapped.asarray(np.array([0, 1, 1, 0]))
    model = nn.MLP([3, 5, 2])
    params = model.init(0, wrapped, "float32")
    optimizer = optimizers.SGD(lr=0.1, momentum=0.9)
    loss = lambda p: losses.cross_entropy(model.apply(p, x), labels)
    uses = {
        "activation": lambda: activations.relu(x),
        "loss": lambda: losses.mse(x, x),
        "Dense": lambda: nn.Dense(3, 2).apply(nn.Dense(3, 2).init(1, wrapped, "float32"), x),
        "MLP": lambda: model.apply(params, x),
        "optimizer": lambda: optimizer.update(params, optimizer.init(params), params),
    }
    for what, use in uses.items():
        del calls[:]
        with using(wrapped):
            use()
        assert calls, f"{what} did not run on {wrapped.name}'s namespace"
        del calls[:]
        with using(backend):
            use()
        assert not calls, f"{what} ran on {wrapped.name}'s namespace inside using({backend.name})"
    # No `using` block: value_and_grad and compile of the wrapper enter it themselves.
    del calls[:]
    value, _ = wrapped.value_and_grad(loss)(params)
    assert calls, "value_and_grad did not run the loss on the wrapper's namespace"
    del calls[:]
    step = make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]), optimizer, wrapped
    )
    state = step.init(params)
    _, state, step_loss = step(params, state, (x, labels))
    assert calls, "the compiled training step did not trace the wrapper's namespace"
    np.testing.assert_allclose(float(wrapped.to_numpy(step_loss)), float(wrapped.to_numpy(value)), rtol=1e-6)


def faulty_wrapper(backend):
    """``exp`` and ``tanh`` off by one part in a thousand, ``sqrt`` by 0.01: front-end code
    run on this backend's namespace must fail the suite."""

    def wrap(name, f):
        if name not in ("exp", "tanh", "sqrt"):
            return f

        def wrong(x, /):
            if name == "sqrt":  # Adam divides two square roots: a factor would cancel, an offset does not
                return backend.xp.add(f(x), 0.01)
            return backend.xp.multiply(f(x), 1.001)

        return wrong

    return wrapper_of(backend, wrap)


def test_the_runner_tests_the_backend_it_names_in_every_family(backend):
    broken = faulty_wrapper(backend)
    use_builtin(backend)  # the built-in backend is now the most recently used owner of these arrays
    dtype = "float32"
    names = ("activation tanh", "loss cross_entropy integer labels", "MLP([6, 8, 8, 3]) with cross_entropy")
    cases = [case for case in front_end.cases(quick=False) if case.name in names]
    cases += training.cases(quick=True) + compiling.cases(quick=True)
    cases += [case for case in optimizers_family.cases(quick=True) if case.name == "Adam"]
    assert len(cases) == 6
    reference = runner.Reference()
    for case in cases:
        broken_row = runner.run_case(case, broken, dtype, reference)
        assert broken_row.status == "fail", (case.id, broken_row)
        use_builtin(backend)
        builtin_row = runner.run_case(case, backend, dtype, reference)
        assert builtin_row.status == "pass", (case.id, builtin_row)

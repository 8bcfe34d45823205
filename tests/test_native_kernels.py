"""relu and cross-entropy by a backend's own kernels (``Backend.kernel``) and by the pure expressions.

On every backend: the public ``relu`` and ``cross_entropy`` (kernel where the backend has
one) and ``pure_relu``/``pure_cross_entropy`` against NumPy float64 references written
here (values and gradients, every label smoothing kind and reduction, tied, signed-zero and
+-1000 logits); the relu conventions (NaN stays NaN, ``relu(-0.0) = +0.0``, ``relu'(0) = 0``,
``relu'(x) = 1`` down to the smallest subnormal); the ``native_kernels`` conformance cases
(kernel against pure within 4 eps of the scale); and, with a spy on ``Backend.kernel``, that
a backend's kernels are used in eager code, and cross-entropy's not where labels cannot be
read (a compiler's tracer).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from helpers import assert_matches, float_dtypes
from portable_dl.conformance import native_kernels
from portable_dl.conformance.cases import CaseSkipped

from portable_dl import activations, losses
from portable_dl.backend import KERNEL_NAMES

RELU_FORMS = {"relu": activations.relu, "pure_relu": activations.pure_relu}
CROSS_ENTROPY_FORMS = {"cross_entropy": losses.cross_entropy, "pure_cross_entropy": losses.pure_cross_entropy}


# ------------------------------------------------------------------------ relu
@pytest.mark.parametrize("form", sorted(RELU_FORMS))
def test_relu_conventions(backend, form):
    """NaN -> NaN, -0.0 and 0 and negatives -> +0.0, positives (the smallest normal and
    subnormal numbers too) unchanged; the derivative 1 where x > 0, 0 where x <= 0
    (relu'(0) = 0), through sum(w * relu(x)) with distinct weights w.

    A backend whose arithmetic flushes subnormals to zero (TensorFlow's and XLA's CPU kernels,
    the platform's choice: see conformance/compare.py) sees the smallest subnormal as 0, and
    relu then gives 0 with derivative 0 there, the convention at 0."""
    relu, xp = RELU_FORMS[form], backend.xp
    for dtype in float_dtypes(backend):
        info = np.finfo(dtype)
        tiny = info.smallest_subnormal
        x = np.array([np.nan, 0.0, -0.0, tiny, -tiny, -1.5, 2.5, np.inf, -np.inf, info.tiny, 3e-30], dtype=dtype)
        w = np.arange(1, x.size + 1, dtype=dtype)
        positive = x[1:] > 0
        if not backend.to_numpy(xp.greater(backend.asarray(x[3:4], dtype), 0))[0]:
            positive[2] = False  # the subnormal is 0 to this backend's arithmetic
        value = backend.to_numpy(relu(backend.asarray(x, dtype)))
        assert backend.dtype_name(value.dtype) == dtype
        assert np.isnan(value[0]), f"{form}(NaN) = {value[0]} ({dtype})"
        np.testing.assert_array_equal(value[1:], np.where(positive, x[1:], 0.0), err_msg=f"{form} ({dtype})")
        assert not np.any(np.signbit(value[1:])), f"{form} gives -0.0: {value} ({dtype})"
        _, grad = backend.value_and_grad(lambda t: xp.sum(xp.multiply(relu(t), backend.asarray(w, dtype))))(
            backend.asarray(x, dtype)
        )
        # the NaN's derivative is no convention and not checked
        np.testing.assert_array_equal(backend.to_numpy(grad)[1:], w[1:] * positive, err_msg=f"{form}' ({dtype})")


def test_leaky_relu_keeps_nan(backend):
    for dtype in float_dtypes(backend):
        x = np.array([np.nan, -2.0, 0.0, 3.0], dtype=dtype)
        value = backend.to_numpy(activations.leaky_relu(backend.asarray(x, dtype), 0.25))
        assert np.isnan(value[0])
        np.testing.assert_array_equal(value[1:], np.array([-0.5, 0.0, 3.0], dtype=dtype))


# --------------------------------------------------------------- cross-entropy
def _inputs():
    """7 samples of 4 classes: tied maxima, all tied, signed zeros, +-1000 rows, ordinary."""
    logits, labels, _ = native_kernels.cross_entropy_inputs("float64", seed=3)
    return logits, labels


def _reference(logits, labels, smoothing):
    """Per-sample loss and d loss / d logits in float64: with q = (1 - e) onehot + e / C,
    -sum_c q_c log_softmax_c and softmax - q."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    q = (1 - smoothing) * np.eye(logits.shape[1])[labels] + smoothing / logits.shape[1]
    return -np.sum(q * log_probs, axis=1), np.exp(log_probs) - q


@pytest.mark.parametrize("label_dtype", ["int32", "int64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("form", sorted(CROSS_ENTROPY_FORMS))
def test_cross_entropy_against_numpy(backend, form, smoothing, reduction, label_dtype):
    if not backend.supports(label_dtype):
        pytest.skip(f"{backend.name} here has no {label_dtype}")
    loss, xp = CROSS_ENTROPY_FORMS[form], backend.xp
    logits, labels = _inputs()
    weights = np.random.default_rng(4).uniform(0.5, 1.5, size=logits.shape[0])
    per_sample, gradient = _reference(logits, labels, smoothing)
    if reduction == "mean":
        expected, expected_grad = per_sample.mean(), gradient / logits.shape[0]
    elif reduction == "sum":
        expected, expected_grad = per_sample.sum(), gradient
    else:
        expected, expected_grad = per_sample, gradient * weights[:, None]
    y = backend.asarray(labels, label_dtype)
    for dtype in float_dtypes(backend):
        z, w = backend.asarray(logits, dtype), backend.asarray(weights, dtype)
        value = loss(z, y, smoothing, reduction)
        assert backend.dtype_name(value.dtype) == dtype
        # the +-1000 rows: the pure form's log-probabilities round at 1000's ulp, so the values
        # are judged at the scale of the largest loss (2000), as assert_matches does
        assert_matches(backend.to_numpy(value), expected, dtype, what=f"{form} value ({dtype})")

        def objective(t):
            out = loss(t, y, smoothing, reduction)
            return xp.sum(xp.multiply(out, w)) if reduction == "none" else out

        _, grad = backend.value_and_grad(objective)(z)
        assert_matches(backend.to_numpy(grad), expected_grad, dtype, what=f"{form} gradient ({dtype})")


def test_cross_entropy_second_derivative(backend):
    """The gradient of sum(c * d loss/d z) for the mean smoothed loss is, row by row,
    s * (c - s . c) / N with s = softmax(z) (the softmax Jacobian, by hand); the kernel's
    derivative must be differentiable again (torch.func under nested value_and_grad)."""
    xp = backend.xp
    logits, labels = _inputs()
    logits = logits[5:]  # ordinary rows: a second derivative of +-1000 rows is 0 and says little
    labels = labels[5:]
    c = np.random.default_rng(5).standard_normal(logits.shape)
    s = np.exp(logits - logits.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    expected = s * (c - np.sum(s * c, axis=1, keepdims=True)) / logits.shape[0]
    y = backend.asarray(labels)
    for dtype in float_dtypes(backend):
        cotangent = backend.asarray(c, dtype)
        inner = backend.grad(lambda t: losses.cross_entropy(t, y, 0.1, "mean"))
        _, second = backend.value_and_grad(lambda t: xp.sum(xp.multiply(inner(t), cotangent)))(
            backend.asarray(logits, dtype)
        )
        assert_matches(backend.to_numpy(second), expected, dtype, what=f"second derivative ({dtype})")


# ------------------------------------------------------- kernel against pure
@pytest.mark.parametrize("case", native_kernels.cases(), ids=lambda case: case.name)
def test_native_kernels_family(backend, case):
    """The conformance cases on every backend: kernel and pure expression agree (4 eps of
    the scale; relu bit for bit), or the case is skipped for want of a kernel."""
    for dtype in float_dtypes(backend):
        try:
            outputs = case.compute(backend, dtype)
        except CaseSkipped as skipped:
            assert not any(backend.kernel(name) for name in KERNEL_NAMES if name in case.name), skipped
            pytest.skip(str(skipped))
        assert outputs == case.expected(backend, dtype), f"{case.name} ({dtype}): {outputs}"


# --------------------------------------------------------- kernels are used
@pytest.fixture
def kernel_calls(backend, monkeypatch):
    """Counts the calls of each of ``backend``'s kernels (a spy around ``Backend.kernel``);
    skips where the backend has none."""
    if all(backend.kernel(name) is None for name in KERNEL_NAMES):
        pytest.skip(f"{backend.name} has no native kernels")
    calls: Counter = Counter()
    original = backend.kernel

    def spying_kernel(name):
        kernel = original(name)
        if kernel is None:
            return None

        def spy(*args):
            calls[name] += 1
            return kernel(*args)

        return spy

    monkeypatch.setattr(backend, "kernel", spying_kernel)
    return calls


def test_eager_code_uses_the_kernels(backend, kernel_calls):
    xp = backend.xp
    z = backend.asarray(np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]]), "float32")
    y = backend.asarray(np.array([2, 0]))
    probabilities = backend.asarray(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]), "float32")
    has = {name: backend.kernel(name) is not None for name in KERNEL_NAMES}

    activations.relu(z)
    losses.cross_entropy(z, y, 0.1, "sum")
    backend.value_and_grad(lambda t: losses.cross_entropy(activations.relu(t), y))(z)
    assert kernel_calls == Counter({name: 2 for name in KERNEL_NAMES if has[name]})
    activations.pure_relu(z)
    losses.pure_cross_entropy(z, y)
    losses.cross_entropy(z, probabilities)  # class probabilities take the pure expression
    xp.sum(z)
    assert kernel_calls == Counter({name: 2 for name in KERNEL_NAMES if has[name]})


def test_unread_labels_never_reach_the_cross_entropy_kernel(backend, kernel_calls):
    """Compiled with a label out of range: either the labels are read there (then the range
    check raises, as in eager code) or they are symbolic, the loss is NaN, and the kernel,
    which may not be given unchecked labels, was not called."""
    z = backend.asarray(np.zeros((3, 4)), "float32")
    y = backend.asarray(np.array([0, 4, 1], dtype="int32"))
    compiled = backend.compile(lambda t, labels: losses.cross_entropy(t, labels))
    try:
        value = backend.to_numpy(compiled(z, y))
    except ValueError as error:
        assert "[0, 4)" in str(error)
    else:
        assert np.isnan(value)
        assert kernel_calls["cross_entropy"] == 0


# ------------------------------------------------------------------- mutants
#: planted kernel faults (conformance/mutants.py) and the full-mode case that must catch each
KERNEL_MUTANTS = {
    "relu-kernel-gradient-1-at-0": "relu at 0, -0.0, NaN, inf, subnormals",
    "cross-entropy-kernel-ignores-label-smoothing": "cross_entropy label_smoothing=0.1 reduction=mean int64 labels",
}


class _PureKernels:
    """The fault-free control: kernels that are the pure forms themselves."""

    def kernel(self, name):
        return {"relu": activations.pure_relu, "cross_entropy": losses.pure_cross_entropy}.get(name)


@pytest.mark.parametrize("mutant", sorted(KERNEL_MUTANTS))
def test_the_family_kills_the_planted_kernel_faults(mutant):
    """The quick family (one case) and the full-mode case that looks there fail on the
    mutant, in float32 and float64, and pass on a control whose kernels are the pure forms."""
    from portable_dl.backends.numpy.backend import NumPyBackend
    from portable_dl.conformance.mutants import MUTANTS

    mutated = MUTANTS[mutant].factory()
    control = type("PureKernels", (_PureKernels, NumPyBackend), {"name": "pure-kernels"})()
    [quick] = native_kernels.cases(quick=True)
    [looking] = [case for case in native_kernels.cases() if case.name == KERNEL_MUTANTS[mutant]]
    for case in (quick, looking):
        for dtype in ("float32", "float64"):
            assert case.compute(control, dtype) == case.expected(control, dtype), f"control fails {case.name}"
            outputs = case.compute(mutated, dtype)
            assert outputs != case.expected(mutated, dtype), f"{mutant} survives {case.name} ({dtype})"
            assert outputs["kernel vs pure"].startswith(("value", "gradient")), outputs

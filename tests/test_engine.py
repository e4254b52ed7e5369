"""The CPU engine's step: minibatch chunks, the fused parallel update, and results that do not
depend on the thread count."""
import numba
import numpy as np
import pytest

from conftest import fit_on_threads

from mlpfast import config
from mlpfast.kernels import addresses, buffers, optim, update
from mlpfast.params import make_layout

WIDTHS = (20, 48, 40, 3)
# more parameters than config.PARALLEL_MIN_PARAMS: the update runs on its tasks in parallel
WIDE = (20, 128, 120, 3)


@pytest.mark.parametrize("cap", [1, 5, 63, 64, 127, 128, 129, 255, 256, 383, 384, 1000, 2100])
def test_chunks_cover_the_minibatch_and_fit_their_buffers(cap):
    S = buffers.chunk_count(cap)
    ws = buffers.train_workspace(WIDTHS, np.float32, 0, 10, cap)
    assert ws.acts.shape[0] == S <= config.MAX_CHUNKS
    chunk_cap = ws.ybuf.shape[1]
    for rows in range(1, cap + 1):
        used, per = buffers.chunk_rows(rows, S)
        assert 1 <= used <= S and per <= chunk_cap
        assert (used - 1) * per < rows <= used * per  # every chunk has rows
        if rows >= config.CHUNK_ROWS and S >= 2:
            assert used >= 2  # two threads share any minibatch of CHUNK_ROWS rows or more
    assert chunk_cap == max(buffers.chunk_rows(r, S)[1] for r in range(1, cap + 1))


def _state(rng, dtype, S, widths):
    layout, P = make_layout(widths)
    ws = buffers.train_workspace(widths, dtype, 0, P, S * config.CHUNK_ROWS)
    assert ws.grads.shape[0] == S - 1
    theta = rng.standard_normal(P).astype(dtype)
    grad = rng.standard_normal(P).astype(dtype)
    ws.grads[:] = rng.standard_normal(ws.grads.shape).astype(dtype)
    opt1 = rng.standard_normal(P).astype(dtype)
    opt2 = rng.random(P).astype(dtype)
    return layout, ws, theta, grad, opt1, opt2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver,nesterov", [(update.ADAM, False), (update.SGD, True),
                                             (update.SGD, False)])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("widths", [WIDTHS, WIDE], ids=["serial", "parallel"])
def test_fused_update_matches_its_steps_one_by_one(rng, dtype, solver, nesterov, workers,
                                                   widths):
    # the task split must not change any parameter's arithmetic, however many workers
    S, coef = 3, 0.01
    layout, ws, theta, grad, opt1, opt2 = _state(rng, dtype, S, widths)
    assert (theta.size >= config.PARALLEL_MIN_PARAMS) == (widths is WIDE)
    expect = [a.copy() for a in (theta, grad, opt1, opt2)]
    t_, g_, m_, v_ = expect
    for c in range(S - 1):
        g_ += ws.grads[c]
    sq_expect = optim.add_l2(g_, t_, layout, coef)
    if solver == update.ADAM:
        optim.adam_step(t_, g_, m_, v_, 7, 1e-3, 0.9, 0.999, 1e-8)
    else:
        optim.sgd_step(t_, g_, m_, 1e-2, 0.9, nesterov)
    # the parallel tasks call _task through its address (kernels.addresses)
    task_fn = addresses.address_of(update._task, update.task_types(ws, theta, grad, opt1, opt2,
                                                                   layout, solver))
    sq = update.update(ws, workers, theta, grad, opt1, opt2, layout, S, coef, solver, 1e-3 if
                       solver == update.ADAM else 1e-2, 0.9, 0.999, 1e-8, 7, 0.9, nesterov,
                       task_fn)
    for got, want in zip((theta, grad, opt1, opt2), expect):
        assert np.array_equal(got, want)
    assert sq == pytest.approx(sq_expect, rel=1e-12)
    # and the weights come out packed as pack_weights packs them
    packed = ws.wpack.copy()
    buffers.pack_weights(ws, theta, layout, True)
    assert np.array_equal(packed, ws.wpack)


@pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("kw", [
    # four chunks per minibatch, 20k parameters: the chunk pass and the update both parallel
    dict(hidden_layer_sizes=(128, 128), batch_size=512, alpha=1e-3),
    dict(hidden_layer_sizes=(64,), batch_size=200, solver="sgd", dropout=0.2),
], ids=["adam", "sgd-dropout"])
def test_training_does_not_depend_on_the_thread_count(kw):
    one = fit_on_threads(1, **kw)
    two = fit_on_threads(2, **kw)
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        assert np.array_equal(a, b)
    assert one.loss_curve_ == two.loss_curve_


def test_update_tasks_cover_every_output_row():
    tasks = buffers.update_tasks(WIDTHS, np.float32)
    for layer, n_out in enumerate(WIDTHS[1:]):
        rows = [(o0, o1) for lyr, o0, o1 in tasks if lyr == layer]
        assert rows[0][0] == 0 and rows[-1][1] == n_out
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
        assert all(o0 % 16 == 0 for o0, _ in rows)  # whole forward panels


# ---- the engine API with every output kind, sample weights and sparse X

from mlpfast import reference as ref  # noqa: E402
from mlpfast import params  # noqa: E402
from mlpfast.engine import CPUEngine, NetSpec  # noqa: E402
from mlpfast.kernels import network  # noqa: E402
from mlpfast.kernels.softmax import OUT_EXP, OUT_IDENTITY, OUT_LOGISTIC, OUT_SOFTMAX  # noqa: E402
from mlpfast.registry import ACTIVATIONS  # noqa: E402

OUTPUTS = {OUT_IDENTITY: "identity", OUT_SOFTMAX: "softmax", OUT_LOGISTIC: "logistic",
           OUT_EXP: "exp"}
HYPER = np.array([1e-3, 1e-3, 0.9, 0.9, 0.999, 1e-8, 0.0])  # network.H_* order


def _data(rng, output, n, features, n_out, dtype, density=0.3):
    X = rng.standard_normal((n, features)).astype(dtype)
    X[rng.random(X.shape) > density] = 0
    X[::11] = 0  # rows with nothing stored
    if output == OUT_SOFTMAX:
        return X, rng.integers(0, n_out, n).astype(np.int32), np.zeros((n, 0), dtype)
    if output == OUT_LOGISTIC:
        Y = (rng.random((n, n_out)) < 0.4).astype(dtype)
    elif output == OUT_EXP:
        Y = rng.poisson(1.0, (n, n_out)).astype(dtype)
    else:
        Y = rng.standard_normal((n, n_out)).astype(dtype)
    return X, np.zeros(0, np.int32), Y


def _train(widths, output, X, y, Y, w, batch, epochs=2, threads=None, solver=network.ADAM,
           dtype=np.float32, dropout=0.0, theta=None):
    """(theta, opt1, opt2, counters, per-epoch totals) after `epochs` shuffled epochs."""
    _, P = make_layout(widths)
    if theta is None:
        theta = (np.random.default_rng(1).standard_normal(P) * 0.1).astype(dtype)
    theta, opt1, opt2 = theta.copy(), np.zeros(P, dtype), np.zeros(P, dtype)
    before = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    try:
        e = CPUEngine(NetSpec(widths, ACTIVATIONS["relu"], output, dtype, solver, batch))
        e.start(theta, opt1, opt2, X, y, Y, w)
        counters, rng = np.zeros(2, np.int64), np.array([5], np.uint64)
        hyper = HYPER.copy()
        hyper[network.H_DROPOUT] = dropout
        totals = [e.train_epoch(rng, True, hyper, counters) for _ in range(epochs)]
    finally:
        numba.set_num_threads(before)
    return theta, opt1, opt2, counters, totals


@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
def test_sparse_and_dense_inputs_train_and_predict_alike(rng, output):
    # the gather densifies each row exactly: every bit of training and prediction agrees
    sp = pytest.importorskip("scipy.sparse")
    widths = (30, 24, 3)
    X, y, Y = _data(rng, output, 700, 30, 3, np.float32)
    w = rng.uniform(0, 2, 700)
    for weights in (None, w):
        dense = _train(widths, output, X, y, Y, weights, 200)
        sparse = _train(widths, output, sp.csr_matrix(X), y, Y, weights, 200)
        for a, b in zip(dense[:4], sparse[:4]):
            assert np.array_equal(a, b)
        assert all(np.array_equal(a, b) for a, b in zip(dense[4], sparse[4]))
    e = CPUEngine(NetSpec(widths, ACTIVATIONS["relu"], output, np.float32, network.ADAM, 1))
    theta = dense[0]
    for fmt in (sp.csr_matrix, sp.csr_array):
        assert np.array_equal(e.predict(theta, X), e.predict(theta, fmt(X)))


def test_sparse_input_is_canonicalised_without_touching_the_caller(rng):
    sp = pytest.importorskip("scipy.sparse")
    # duplicates and unsorted indices, int32 indices, float64 data for a float32 model
    X = sp.csr_matrix((np.array([1.0, 2.0, 0.5, 7.0, 3.0, -1.0]),
                       np.array([3, 1, 3, 2, 4, 0], np.int32), np.array([0, 3, 4, 6], np.int32)),
                      shape=(3, 5))
    assert not X.has_canonical_format
    saved = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    dense = X.toarray().astype(np.float32)
    widths = (5, 4, 2)
    _, P = make_layout(widths)
    theta = rng.standard_normal(P).astype(np.float32)
    e = CPUEngine(NetSpec(widths, ACTIVATIONS["tanh"], OUT_IDENTITY, np.float32, network.ADAM, 1))
    assert np.array_equal(e.predict(theta, X), e.predict(theta, dense))
    assert all(np.array_equal(a, b) for a, b in zip(saved, (X.data, X.indices, X.indptr)))


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("output", [OUT_SOFTMAX, OUT_LOGISTIC], ids=["softmax", "logistic"])
def test_weighted_sparse_training_does_not_depend_on_the_thread_count(rng, output):
    sp = pytest.importorskip("scipy.sparse")
    # four chunks per minibatch and more than PARALLEL_MIN_PARAMS parameters: the chunk pass
    # and the update both parallel; weights with zeros among them; dropout
    widths = (40, 128, 128, 4)
    X, y, Y = _data(rng, output, 2100, 40, 4, np.float32)
    w = rng.uniform(0, 2, 2100) * (rng.random(2100) > 0.3)
    Xs = sp.csr_matrix(X)
    one = _train(widths, output, Xs, y, Y, w, 512, threads=1, dropout=0.1)
    two = _train(widths, output, Xs, y, Y, w, 512, threads=2, dropout=0.1)
    for a, b in zip(one[:4], two[:4]):
        assert np.array_equal(a, b)
    assert all(np.array_equal(a, b) for a, b in zip(one[4], two[4]))
    # and the full-batch objective
    e = CPUEngine(NetSpec(widths, ACTIVATIONS["relu"], output, np.float32, network.ADAM, 512))
    theta = one[0]
    e.start(theta.copy(), theta * 0, theta * 0, Xs, y, Y, w)
    got = []
    for threads in (1, 2):
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            grad = np.zeros_like(theta)
            got.append((e.loss_gradient(theta, grad, 1e-3), grad))
        finally:
            numba.set_num_threads(before)
    assert got[0][0] == got[1][0] and np.array_equal(got[0][1], got[1][1])


def _reference_epoch(theta, layout, X, target, w, batch, alpha, lr, output):
    """One epoch of plain SGD (no momentum, no shuffle) on the float64 reference: the
    weights and scikit-learn's summed rows * batch loss."""
    total = 0.0
    n = len(X)
    for start in range(0, n, batch):
        rows = slice(start, min(n, start + batch))
        wb = None if w is None else w[rows]
        if wb is not None and wb.sum() == 0:
            continue  # skipped: no step, nothing added to the loss
        loss, dW, db = ref.gradient(params.coefs(theta, layout), params.intercepts(theta, layout),
                                    X[rows], target[rows], "relu", output, alpha, wb)
        g = np.zeros_like(theta)
        params.assign(g, layout, dW, db)
        theta = theta - lr * g
        total += (rows.stop - rows.start) * loss
    return theta, total


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
def test_training_steps_match_the_reference(rng, output, weighted):
    # minibatches of 64 rows (one chunk) and 130 (two chunks), the last partial; the first
    # minibatch's weights all zero, so it is skipped
    widths = (6, 9, 3)
    layout, P = make_layout(widths)
    n = 330
    X, y, Y = _data(rng, output, n, 6, 3, np.float64, density=1.0)
    target = y if output == OUT_SOFTMAX else Y
    w = rng.uniform(0, 2, n) if weighted else None
    if weighted:
        w[:64] = 0
    theta0 = rng.standard_normal(P) * 0.3
    for batch in (64, 130):
        hyper = HYPER.copy()
        hyper[network.H_LR] = 0.05
        hyper[network.H_MOMENTUM] = 0.0
        e = CPUEngine(NetSpec(widths, ACTIVATIONS["relu"], output, np.float64, network.SGD,
                              batch))
        theta = theta0.copy()
        e.start(theta, np.zeros(P), np.zeros(P), X, y, Y, w)
        totals = e.train_epoch(np.array([1], np.uint64), False, hyper, np.zeros(2, np.int64))
        want, total = _reference_epoch(theta0, layout, X, target, w, batch, HYPER[1], 0.05,
                                       output)
        np.testing.assert_allclose(theta, want, rtol=1e-10, atol=1e-12)
        assert totals[network.T_LOSS] == pytest.approx(total, rel=1e-11)
        assert totals[network.T_ROWS] == n


def test_a_minibatch_of_zero_weight_is_skipped(rng):
    # Adam: the skipped minibatch takes no step and does not advance Adam's step count; the
    # result is the training on the other minibatches alone, bit for bit
    widths = (6, 9, 3)
    X, y, Y = _data(rng, OUT_SOFTMAX, 192, 6, 3, np.float64, density=1.0)
    w = rng.uniform(0.5, 2, 192)
    w[64:128] = 0
    keep = np.r_[0:64, 128:192]
    theta0 = rng.standard_normal(make_layout(widths)[1]) * 0.3
    e = {}
    for tag, (Xa, ya, Ya, wa) in {"skipped": (X, y, Y, w),
                                  "alone": (X[keep], y[keep], Y[keep], w[keep])}.items():
        theta = theta0.copy()
        P = len(theta)
        eng = CPUEngine(NetSpec(widths, ACTIVATIONS["relu"], OUT_SOFTMAX, np.float64,
                                network.ADAM, 64))
        eng.start(theta, np.zeros(P), np.zeros(P), Xa, ya, Ya, wa)
        counters = np.zeros(2, np.int64)
        totals = eng.train_epoch(np.array([1], np.uint64), False, HYPER, counters)
        e[tag] = (theta, counters, totals)
    assert np.array_equal(e["skipped"][0], e["alone"][0])
    assert e["skipped"][1][network.C_ADAM_T] == e["alone"][1][network.C_ADAM_T] == 2
    assert e["skipped"][2][network.T_LOSS] == e["alone"][2][network.T_LOSS]
    assert e["skipped"][2][network.T_ROWS] == 192 and e["alone"][2][network.T_ROWS] == 128


@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
def test_predict_applies_the_output_activation(rng, output):
    widths = (7, 5, 3)
    layout, P = make_layout(widths)
    theta = rng.standard_normal(P)
    X = rng.standard_normal((1100, 7))  # three prediction blocks
    e = CPUEngine(NetSpec(widths, ACTIVATIONS["tanh"], output, np.float64, network.ADAM, 1))
    Z = ref.forward(params.coefs(theta, layout), params.intercepts(theta, layout), X, "tanh")[-1]
    np.testing.assert_allclose(e.predict(theta, X), ref.OUTPUTS[output][2](Z), rtol=1e-12,
                               atol=1e-14)

"""The CPU engine's step: minibatch chunks, the fused parallel update, and results that do not
depend on the thread count."""
import numba
import numpy as np
import pytest

from mlpfast import MLPClassifier, config
from mlpfast.kernels import buffers, optim, update
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
    sq = update.update(ws, workers, theta, grad, opt1, opt2, layout, S, coef, solver, 1e-3 if
                       solver == update.ADAM else 1e-2, 0.9, 0.999, 1e-8, 7, 0.9, nesterov)
    for got, want in zip((theta, grad, opt1, opt2), expect):
        assert np.array_equal(got, want)
    assert sq == pytest.approx(sq_expect, rel=1e-12)
    # and the weights come out packed as pack_weights packs them
    packed = ws.wpack.copy()
    buffers.pack_weights(ws, theta, layout, True)
    assert np.array_equal(packed, ws.wpack)


def _fit(threads, **kw):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1500, 20)).astype(np.float32)
    y = (X[:, :3] @ rng.standard_normal(3) > 0).astype(int) + (X[:, 3] > 1)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        clf = MLPClassifier(random_state=0, max_iter=3, tol=0, **kw).fit(X, y)
    finally:
        numba.set_num_threads(before)
    return clf


@pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("kw", [
    # four chunks per minibatch, 20k parameters: the chunk pass and the update both parallel
    dict(hidden_layer_sizes=(128, 128), batch_size=512, alpha=1e-3),
    dict(hidden_layer_sizes=(64,), batch_size=200, solver="sgd", dropout=0.2),
], ids=["adam", "sgd-dropout"])
def test_training_does_not_depend_on_the_thread_count(kw):
    one = _fit(1, **kw)
    two = _fit(2, **kw)
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

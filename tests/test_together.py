"""Many models in one compiled call (network.train_batches_many) and fits pooled into such calls
(engine.together.run_together): every model ends with the bits it gets alone."""
import _thread
import threading
import time
import warnings

import numpy as np
import pytest

from mlpfast import MLPClassifier, MLPRegressor, config, tabular
from mlpfast.engine import CPUEngine, NetSpec, together
from mlpfast.kernels import network, random, softmax
from mlpfast.kernels.activations import RELU, TANH
from mlpfast.params import make_layout

# how long a pooled test may take before it counts as hung (compilation included)
HANG = 300


class Model:
    """One model's engine and the state train_epoch keeps for it."""

    def __init__(self, spec, data, rs, seed, hyper, nesterov, shuffled=True):
        X, y, Y, w = data
        layout, P = make_layout(spec.widths)
        dtype = spec.dtype
        self.theta = (rs.standard_normal(P) * 0.3).astype(dtype)
        self.opt1 = (rs.standard_normal(P) * 0.01).astype(dtype)
        adam = spec.solver == network.ADAM
        self.opt2 = (rs.random(P) * 0.01).astype(dtype) if adam else self.opt1[:0]
        self.engine = CPUEngine(spec)
        self.engine.start(self.theta, self.opt1, self.opt2, X, y, Y, sample_weight=w)
        self.rng = np.array([seed], np.uint64)
        if shuffled:
            random.shuffle(self.engine.perm, self.rng)
        self.hyper = np.asarray(hyper, np.float64)
        self.counters = np.array([3, nesterov], np.int64)
        self.totals = np.array([0.5, 1.0, 2.0])

    def copy(self):
        other = object.__new__(Model)
        other.__dict__ = {k: v.copy() for k, v in self.__dict__.items() if k != "engine"}
        e = CPUEngine(self.engine.spec)
        e.__dict__.update(self.engine.__dict__)
        e.theta, e.opt1, e.opt2 = other.theta, other.opt1, other.opt2
        e.perm = self.engine.perm.copy()
        other.engine = e
        return other

    def state(self):
        return [self.theta, self.opt1, self.opt2, self.counters, self.rng, self.totals]


def _data(rs, widths, output, dtype, n, weighted, sparse=False):
    X = rs.standard_normal((n, widths[0])).astype(dtype)
    if sparse:
        import scipy.sparse
        X[rs.random(X.shape) < 0.6] = 0
        X = scipy.sparse.csr_matrix(X)
    y = Y = None
    if output == softmax.OUT_SOFTMAX:
        y = rs.integers(0, widths[-1], n).astype(np.int32)
    elif output == softmax.OUT_LOGISTIC:
        Y = (rs.random((n, widths[-1])) < 0.4).astype(dtype)
    else:
        Y = rs.random((n, widths[-1])).astype(dtype) * 2
    w = None
    if weighted:
        w = rs.random(n) * 2
        w[:40] = 0  # whole minibatches of weight 0 where a model takes rows in their order
    return X, y, Y, w


def _alone_then_pooled(models, firsts, lasts, threads):
    """Each model alone (train_batches, on every thread), and copies of them pooled into one
    round of together's group; returns (alone, pooled, calls of train_batches_many)."""
    pooled = [m.copy() for m in models]
    for m, f, la in zip(models, firsts, lasts):
        m.engine._train(f, la, m.hyper, m.counters, m.rng, m.totals)
    group = together._Group(0, threads)
    jobs = [together._Job(m.engine, f, la, m.hyper, m.counters, m.rng, m.totals)
            for m, f, la in zip(pooled, firsts, lasts)]
    calls = []
    real = network.train_batches_many

    def spy(*args):
        calls.append(args[4].shape[0])  # dsel: the models of the call
        return real(*args)
    network.train_batches_many = spy
    try:
        group._run_batch(jobs)
    finally:
        network.train_batches_many = real
    return models, pooled, calls


CASES = {
    # widths, hidden, output, solver, dtype, batch, weighted, sparse
    "softmax-adam-weighted": ((7, 5, 3), RELU, softmax.OUT_SOFTMAX, network.ADAM, np.float32, 32,
                              True, False),
    "logistic-sgd": ((33, 17, 1), TANH, softmax.OUT_LOGISTIC, network.SGD, np.float32, 25, False,
                     False),
    "identity-two-chunks": ((4, 9, 2), RELU, softmax.OUT_IDENTITY, network.ADAM, np.float32, 130,
                            True, False),
    "exp-float64": ((6, 8, 8, 1), TANH, softmax.OUT_EXP, network.SGD, np.float64, 17, False,
                    False),
    "softmax-sparse": ((12, 7, 4), RELU, softmax.OUT_SOFTMAX, network.SGD, np.float32, 20, True,
                       True),
    # more parameters than config.PARALLEL_MIN_PARAMS: alone, the update runs in parallel
    "wide-update": ((20, 128, 120, 3), RELU, softmax.OUT_SOFTMAX, network.ADAM, np.float32, 64,
                    False, False),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", list(CASES))
def test_many_models_in_one_call_have_the_bits_of_each_alone(case, threads):
    widths, hidden, output, solver, dtype, batch, weighted, sparse = CASES[case]
    rs = np.random.default_rng(len(case))
    n = 301
    data = _data(rs, widths, output, dtype, n, weighted, sparse)
    spec = NetSpec(widths, hidden, output, dtype, solver, batch)
    hypers = [[0.05, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0],
              [0.01, 0.0, 0.5, 0.8, 0.99, 1e-7, 0.25],
              [0.002, 1e-2, 0.0, 0.95, 0.9, 1e-6, 0.0],
              [0.03, 1e-3, 0.95, 0.9, 0.999, 1e-8, 0.5]]
    # different perms (one in the data's order: weight-0 minibatches come first), momenta,
    # nesterov, dropout, learning rates; different ranges, one empty
    models = [Model(spec, data, rs, seed=11 + 7 * k, hyper=hypers[k], nesterov=k % 2,
                    shuffled=k != 2) for k in range(4)]
    n_batches = -(-n // batch)
    firsts = [0, 1, 0, n_batches - 1]
    lasts = [n_batches, n_batches - 1, n_batches, n_batches - 1]
    alone, pooled, calls = _alone_then_pooled(models, firsts, lasts, threads)
    assert calls == [4]
    for a, b in zip(alone, pooled):
        for x, z in zip(a.state(), b.state()):
            assert np.array_equal(x, z)
    assert not np.array_equal(alone[0].theta, alone[1].theta)


def _alone_then_pooled_spied(models, firsts, lasts, threads):
    """_alone_then_pooled, also returning each call's (psel, order, bounds)."""
    seen = []
    real = network.train_batches_many

    def spy(*args):
        seen.append((args[25].copy(), args[23].copy(), args[24].copy()))
        return real(*args)
    network.train_batches_many = spy
    try:
        out = _alone_then_pooled(models, firsts, lasts, threads)
    finally:
        network.train_batches_many = real
    return out + (seen,)


SHARED_HYPERS = [[0.05, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0],
                 [0.01, 0.0, 0.5, 0.8, 0.99, 1e-7, 0.25],
                 [0.002, 1e-2, 0.0, 0.95, 0.9, 1e-6, 0.0],
                 [0.03, 1e-3, 0.95, 0.9, 0.999, 1e-8, 0.5],
                 [0.02, 3e-3, 0.8, 0.9, 0.999, 1e-8, 0.1],
                 [0.004, 0.0, 0.9, 0.85, 0.995, 1e-8, 0.0],
                 [0.015, 1e-5, 0.7, 0.9, 0.999, 1e-8, 0.3],
                 [0.008, 2e-4, 0.99, 0.9, 0.999, 1e-8, 0.0]]


def _blocks_of(monkeypatch, G, batch, widths, dtype, output):
    # together's gather blocks of G minibatches (None: as configured)
    if G is not None:
        targets = 0 if output == softmax.OUT_SOFTMAX else widths[-1]
        row = np.dtype(dtype).itemsize * (widths[0] + targets) + 12
        monkeypatch.setattr(together, "_GATHER_BLOCK_BYTES", G * batch * row)


@pytest.mark.parametrize("G", [1, 3, None])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("K", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("case", ["softmax-adam-weighted", "logistic-sgd", "identity-two-chunks",
                                  "exp-float64", "softmax-sparse"])
def test_models_sharing_their_minibatches_have_the_bits_of_each_alone(case, K, threads, G,
                                                                      monkeypatch):
    # the same order (one seed) and data: the minibatches gathered once, G at a time, for
    # the models of a thread; learning rates, alpha, momenta, nesterov and dropout differ
    widths, hidden, output, solver, dtype, batch, weighted, sparse = CASES[case]
    _blocks_of(monkeypatch, G, batch, widths, dtype, output)
    rs = np.random.default_rng(len(case) + K)
    n = 301
    data = _data(rs, widths, output, dtype, n, weighted, sparse)
    spec = NetSpec(widths, hidden, output, dtype, solver, batch)
    models = [Model(spec, data, rs, seed=11, hyper=SHARED_HYPERS[k], nesterov=k % 2)
              for k in range(K)]
    n_batches = -(-n // batch)
    firsts = [0] * K
    lasts = [n_batches] * K
    alone, pooled, calls, seen = _alone_then_pooled_spied(models, firsts, lasts, threads)
    for a, b in zip(alone, pooled):
        for x, z in zip(a.state(), b.state()):
            assert np.array_equal(x, z)
    if K > 1:
        assert calls == [K]
        psel, order, bounds = seen[0]
        assert list(psel) == [0] * K  # one order, copied once
        # each thread's models of the group next to each other, the threads evenly loaded
        per = [len(order[bounds[t]:bounds[t + 1]]) for t in range(len(bounds) - 1)]
        assert max(per) - min(per) <= 1
        assert not np.array_equal(alone[0].theta, alone[1].theta)


@pytest.mark.parametrize("G", [1, 4, None])
@pytest.mark.parametrize("threads", [1, 2])
def test_shared_and_unshared_models_mixed_in_one_call(threads, G, monkeypatch):
    # two orders, models with other ranges, an empty range, one in the data's order: groups
    # of models sharing their minibatches beside models alone on the same threads
    widths, hidden, output, solver, dtype, batch, weighted, sparse = CASES["softmax-adam-weighted"]
    _blocks_of(monkeypatch, G, batch, widths, dtype, output)
    rs = np.random.default_rng(99)
    n = 301
    data = _data(rs, widths, output, dtype, n, True)
    spec = NetSpec(widths, hidden, output, dtype, solver, batch)
    seeds = [11, 11, 11, 11, 23, 23, 11, 23]
    models = [Model(spec, data, rs, seed=seeds[k], hyper=SHARED_HYPERS[k], nesterov=k % 2,
                    shuffled=k != 7) for k in range(8)]
    nb_ = -(-n // batch)
    firsts = [0, 0, 0, 1, 0, 0, 2, 3]
    lasts = [nb_, nb_, nb_, nb_, nb_ - 1, nb_ - 1, 2, nb_]
    alone, pooled, calls, seen = _alone_then_pooled_spied(models, firsts, lasts, threads)
    assert calls == [8]
    psel = list(seen[0][0])
    assert psel[:4] == [0] * 4 and psel[4] == psel[5] and psel[4] != 0 and psel[6] == 0
    assert len(set(psel)) == 3
    for a, b in zip(alone, pooled):
        for x, z in zip(a.state(), b.state()):
            assert np.array_equal(x, z)


def test_balance_keeps_a_group_of_models_together_on_a_thread():
    def per(order, bounds):
        return [list(order[bounds[t]:bounds[t + 1]]) for t in range(len(bounds) - 1)]
    assert per(*together.balance([5] * 8, 2, ["a"] * 8)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert per(*together.balance([5] * 8, 2, ["a", "b"] * 4)) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert per(*together.balance([5] * 8, 2, ["a"] * 7 + ["b"])) == [[0, 1, 2, 3],
                                                                     [4, 5, 6, 7]]
    # without keys, or with keys all different: longest first onto the least loaded
    assert per(*together.balance([5, 1, 9, 3, 3], 2, list("abcde"))) == [[2, 1], [0, 3, 4]]


def test_models_on_different_data_of_one_shape_share_a_call(monkeypatch):
    rs = np.random.default_rng(5)
    widths = (9, 6, 3)
    spec = NetSpec(widths, RELU, softmax.OUT_SOFTMAX, np.float32, network.ADAM, 16)
    sets = [_data(rs, widths, softmax.OUT_SOFTMAX, np.float32, 100, w) for w in (False, False)]
    hyper = [0.01, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0]
    models = [Model(spec, sets[k % 2], rs, seed=k + 1, hyper=hyper, nesterov=0)
              for k in range(3)]
    alone, pooled, calls = _alone_then_pooled(models, [0] * 3, [7] * 3, 2)
    assert calls == [3]
    for a, b in zip(alone, pooled):
        for x, z in zip(a.state(), b.state()):
            assert np.array_equal(x, z)
    # past the copy limit, each data set's models get calls of their own
    monkeypatch.setattr(config, "TOGETHER_COPY_BYTES", 1)
    models = [Model(spec, sets[k % 2], rs, seed=k + 1, hyper=hyper, nesterov=0)
              for k in range(3)]
    alone, pooled, calls = _alone_then_pooled(models, [0] * 3, [7] * 3, 2)
    assert calls == [2]  # sets[0]'s two models; sets[1]'s one runs alone
    for a, b in zip(alone, pooled):
        for x, z in zip(a.state(), b.state()):
            assert np.array_equal(x, z)


def test_equal_data_in_other_arrays_is_one_data_set():
    rs = np.random.default_rng(1)
    spec = NetSpec((5, 4, 2), RELU, softmax.OUT_SOFTMAX, np.float32, network.SGD, 8)
    X, y, Y, w = _data(rs, spec.widths, softmax.OUT_SOFTMAX, np.float32, 50, False)
    group = together._Group(0, 2)
    engines = []
    for X_, y_ in [(X, y), (X.copy(), y.copy()), (X, y[::-1].copy())]:
        e = CPUEngine(spec)
        e.start(np.zeros(make_layout(spec.widths)[1], np.float32), np.zeros(1, np.float32)[:0],
                np.zeros(0, np.float32), X_, y_, None)
        engines.append(e)
    assert [group._data_index(e) for e in engines] == [0, 0, 1]
    Xz = X.copy()
    Xz[0, 0] = 0.0
    Xn = Xz.copy()
    Xn[0, 0] = -0.0  # equal values, not equal bits
    assert not together._same_data(engines[0].data._replace(X=Xz), engines[0].data._replace(X=Xn))


def test_balance_puts_the_longest_first_on_the_least_loaded_thread():
    order, bounds = together.balance([5, 1, 9, 3, 3], 2)
    per = [list(order[bounds[t]:bounds[t + 1]]) for t in range(len(bounds) - 1)]
    assert per == [[2, 1], [0, 3, 4]]
    order, bounds = together.balance([4, 4], 8)
    assert list(bounds) == [0, 1, 2]


# ---- run_together

def _data_cls(n=400, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, 7)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.6)
    return X, y


def _classifier(i, **kw):
    params = dict(hidden_layer_sizes=(5,), batch_size=32, random_state=i,
                  learning_rate_init=0.01 * (i + 1), alpha=1e-4 * i, max_iter=6)
    params.update(kw)
    return MLPClassifier(**params)


@pytest.fixture
def pooled_calls(monkeypatch):
    """The models of each train_batches_many call made while the test runs."""
    calls = []
    real = network.train_batches_many

    def spy(*args):
        calls.append(args[4].shape[0])
        return real(*args)
    monkeypatch.setattr(network, "train_batches_many", spy)
    return calls


def _same_fit(a, b):
    assert not isinstance(b, BaseException), repr(b)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_curve_ == b.loss_curve_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(p, q)


def _bounded(fn):
    """fn() in a thread, failing the test instead of hanging it."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "run_together hung"
    return out[0]


def test_run_together_fits_equal_the_fits_alone(pooled_calls):
    X, y = _data_cls()
    kws = [{}, {}, dict(solver="sgd", momentum=0.8), {},
           # stops early, long before the others
           dict(early_stopping=True, n_iter_no_change=1, tol=10.0, max_iter=40),
           dict(hidden_layer_sizes=(6, 3), batch_size=50),  # another network: a call alone
           dict(solver="lbfgs", max_iter=15)]
    make = [lambda i=i, kw=kw: _classifier(i, **kw) for i, kw in enumerate(kws)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [m().fit(X, y) for m in make]
        pooled = _bounded(lambda: together.run_together([lambda m=m: m().fit(X, y)
                                                         for m in make]))
    for a, b in zip(alone, pooled):
        _same_fit(a, b)
    assert alone[4].n_iter_ < alone[0].n_iter_
    assert max(pooled_calls) == 3  # the three Adam fits of one network on the same data


def test_a_participant_that_raises_does_not_hold_up_the_others(pooled_calls):
    X, y = _data_cls()

    def interrupt_at_2(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
            raise KeyboardInterrupt("stop")

    make = [lambda: _classifier(0, max_iter=8),
            lambda: _classifier(1, hidden_layer_sizes=(-3,)),  # refused before training
            lambda: _classifier(2, max_iter=8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [make[0]().fit(X, y), make[2]().fit(X, y)]
        out = _bounded(lambda: together.run_together(
            [lambda: make[0]().fit(X, y), lambda: make[1]().fit(X, y),
             lambda: make[2]().fit(X, y),
             lambda: _classifier(3).fit(X, y, callback=interrupt_at_2)]))
    _same_fit(alone[0], out[0])
    assert isinstance(out[1], ValueError)
    _same_fit(alone[1], out[2])
    assert isinstance(out[3], KeyboardInterrupt)
    assert max(pooled_calls) == 3 and pooled_calls[-1] == 2


def test_ctrl_c_stops_every_participant_and_is_raised_with_the_results():
    X, y = _data_cls(2000)
    started = threading.Event()

    def watch(est, event):
        started.set()

    def interrupt():
        started.wait(HANG)
        time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt) as caught:
            together.run_together([lambda i=i: _classifier(i, max_iter=10 ** 6, tol=0.0,
                                                            n_iter_no_change=10 ** 9)
                                   .fit(X, y, callback=watch) for i in range(3)])
    assert time.perf_counter() - t0 < HANG
    assert all(isinstance(r, KeyboardInterrupt) for r in caught.value.results), caught.value.results


def test_outside_run_together_nothing_is_pooled():
    assert together.current() is None
    X, y = _data_cls(100)
    seen = []
    out = together.run_together([lambda: seen.append(together.current()) or 1])
    assert out == [1] and seen[0] is not None and together.current() is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _classifier(0, max_iter=2).fit(X, y)
        b = _classifier(0, max_iter=2).fit(X, y)
    _same_fit(a, b)


def test_run_together_regressors_with_sample_weights_and_dropout(pooled_calls):
    rs = np.random.default_rng(3)
    X = rs.standard_normal((300, 5)).astype(np.float32)
    yr = X @ rs.standard_normal(5) + 0.1 * rs.standard_normal(300)
    w = rs.random(300) * 2
    make = [lambda i=i: MLPRegressor(hidden_layer_sizes=(8,), batch_size=20, random_state=i,
                                     max_iter=4, dropout=0.2 * (i % 2),
                                     learning_rate_init=0.003 * (i + 1)) for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [m().fit(X, yr, sample_weight=w) for m in make]
        pooled = _bounded(lambda: together.run_together(
            [lambda m=m: m().fit(X, yr, sample_weight=w) for m in make]))
    for a, b in zip(alone, pooled):
        _same_fit(a, b)
    assert pooled_calls and max(pooled_calls) == 4


@pytest.fixture
def pooled_psel(monkeypatch):
    """Each train_batches_many call's psel (each model's row of the orders)."""
    calls = []
    real = network.train_batches_many

    def spy(*args):
        calls.append(args[25].copy())
        return real(*args)
    monkeypatch.setattr(network, "train_batches_many", spy)
    return calls


def test_run_together_fits_of_one_seed_equal_the_fits_alone(pooled_psel):
    # a sweep's trials grouped to train together: one random_state, so the same shuffles,
    # learning rates and alphas differ; the minibatches are gathered once for them
    X, y = _data_cls(500)
    make = [lambda i=i: _classifier(0, learning_rate_init=0.002 * (i + 1), alpha=1e-4 * i)
            for i in range(6)]
    make.append(lambda: _classifier(0, solver="sgd", momentum=0.7, learning_rate_init=0.05))
    make.append(lambda: _classifier(3))  # another seed: other shuffles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [m().fit(X, y) for m in make]
        pooled = _bounded(lambda: together.run_together([lambda m=m: m().fit(X, y)
                                                         for m in make]))
    for a, b in zip(alone, pooled):
        _same_fit(a, b)
    # the six Adam fits of seed 0 share one order, seed 3's has its own (the fits come in any
    # order in a call; the SGD fit has a call of its own)
    assert pooled_psel and all(sorted(np.bincount(p)) == [1, 6] for p in pooled_psel)


def test_run_together_fits_of_one_seed_with_sample_weights_and_dropout(pooled_psel):
    rs = np.random.default_rng(4)
    X = rs.standard_normal((300, 5)).astype(np.float32)
    yr = X @ rs.standard_normal(5) + 0.1 * rs.standard_normal(300)
    w = rs.random(300) * 2
    make = [lambda i=i: MLPRegressor(hidden_layer_sizes=(8,), batch_size=20, random_state=5,
                                     max_iter=4, dropout=0.15 * (i % 3), alpha=1e-3 * i,
                                     learning_rate_init=0.003 * (i + 1)) for i in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [m().fit(X, yr, sample_weight=w) for m in make]
        pooled = _bounded(lambda: together.run_together(
            [lambda m=m: m().fit(X, yr, sample_weight=w) for m in make]))
    for a, b in zip(alone, pooled):
        _same_fit(a, b)
    # the first epoch's shuffle is one for all; dropout then draws its streams from the fit's
    # generator, so later shuffles are one for the fits with dropout (as many draws at any
    # rate) and another for those without (the fits come in any order in a call)
    assert list(pooled_psel[0]) == [0] * 5
    assert len(pooled_psel) == 4
    for p in pooled_psel[1:]:
        assert sorted(np.bincount(p)) == [2, 3]


def test_a_group_hashes_equal_data_once_and_changed_data_again(monkeypatch):
    import hashlib

    def make():
        return hashlib.blake2b(digest_size=16)

    def alone(a):
        h = make()
        h.update(a.reshape(-1).view(np.uint8))
        return h.hexdigest()
    group = together._Group(0, 1)
    a = np.random.default_rng(0).standard_normal((300_000,)).astype(np.float32)
    b = a.copy()
    assert group.hashed(a, make).hexdigest() == alone(a)
    assert group.hashed(b, make).hexdigest() == alone(a)
    assert len(group._hashed) == 1
    a[12345] = -a[12345]  # written after it was hashed: hashed again
    assert group.hashed(a, make).hexdigest() == alone(a) != alone(b)
    z = b.copy()
    z[7] = 0.0
    n = z.copy()
    n[7] = -0.0  # equal values, not equal bits
    assert group.hashed(z, make).hexdigest() == alone(z)
    assert group.hashed(n, make).hexdigest() == alone(n) != alone(z)
    assert group.hashed(b, make).hexdigest() == alone(b)
    # past the copy limit nothing is kept, and each is hashed
    monkeypatch.setattr(config, "TOGETHER_COPY_BYTES", 1)
    group = together._Group(0, 1)
    assert group.hashed(b, make).hexdigest() == alone(b) and group._hashed == []
    # fits in threads on equal data: one copy hashed, each the digest of its own bytes
    monkeypatch.setattr(config, "TOGETHER_COPY_BYTES", 1 << 30)
    group = together._Group(0, 1)
    arrays = [b if i % 3 else b.copy() for i in range(7)] + [a]
    got = [None] * len(arrays)
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(
        i, group.hashed(arrays[i], make).hexdigest())) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [alone(x) for x in arrays]


def test_run_together_fits_keep_the_data_digest_of_each_alone(monkeypatch):
    monkeypatch.setattr(together, "_HASH_SHARE_MIN", 0)
    X, y = _data_cls(300)
    X2 = X.copy()
    X2[5, 3] += 1
    Xs = [X, X, X.copy(), X2, X.astype(np.float64)]
    make = [lambda i=i, Xi=Xi: _classifier(0, max_iter=2, learning_rate_init=0.01 * (i + 1))
            .fit(Xi, y) for i, Xi in enumerate(Xs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [m() for m in make]
        pooled = _bounded(lambda: together.run_together(make))
    for a, b in zip(alone, pooled):
        _same_fit(a, b)
        assert a._data_digest == b._data_digest
    assert len({a._data_digest for a in alone}) == 2  # X2's differs; float64 X is read as float32


def test_run_together_tabular_train_equals_train_alone(tmp_path, pooled_calls):
    rs = np.random.default_rng(7)
    n = 300
    lines = ["a,b,c,kind,y"]
    for i in range(n):
        a, b, c = rs.standard_normal(3)
        kind = "pqr"[i % 3]
        lines.append(f"{a:.4f},{b:.4f},{c:.4f},{kind},{'yes' if a + b > 0 else 'no'}")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    runs = [dict(seed=0, learning_rate_init=0.01), dict(seed=0, learning_rate_init=0.003),
            dict(seed=1, alpha=1e-3), dict(seed=2, early_stopping=True, n_iter_no_change=2)]
    common = dict(hidden_layer_sizes=(6,), max_iter=5, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [tabular.train(path, **common, **r) for r in runs]
        pooled = _bounded(lambda: together.run_together(
            [lambda r=r: tabular.train(path, **common, **r) for r in runs]))
    for a, b in zip(alone, pooled):
        assert not isinstance(b, BaseException), repr(b)
        _same_fit(a.estimator, b.estimator)
    # the four fits pooled (seed 0's two on one split, seeds 1 and 2 on splits of their own)
    assert max(pooled_calls) == 4


def test_a_failing_pooled_call_fails_its_own_fits_only(monkeypatch):
    X, y = _data_cls()
    real = network.train_batches_many

    def fails_for_hidden_5(*args):
        if args[15][1] == 5:  # widths
            raise RuntimeError("boom")
        return real(*args)
    monkeypatch.setattr(network, "train_batches_many", fails_for_hidden_5)
    make = [lambda i=i, h=h: _classifier(i, hidden_layer_sizes=(h,))
            for i, h in enumerate([5, 6, 5, 6])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [make[1]().fit(X, y), make[3]().fit(X, y)]
        out = _bounded(lambda: together.run_together([lambda m=m: m().fit(X, y) for m in make]))
    assert isinstance(out[0], RuntimeError) and isinstance(out[2], RuntimeError)
    _same_fit(alone[0], out[1])
    _same_fit(alone[1], out[3])

"""Many W4 trials at once: est.fit one after another against engine.together.run_together.

    python benchmarks/together.py [--trials 8] [--epochs 3] [--rounds 5] [--one-thread] [--kernel]
                                  [--same-seed]

W4 (benchmarks/README.md: 100,000 x 20 standard-normal features, hidden 64, 2 classes,
batch 32, Adam) as a small hyperparameter search: trial i has random_state i (its own
shuffles) and its own learning rate around 1e-3, `--epochs` epochs each (tol=0: no early
stop). Each round times (a) the trials one after another through est.fit and (b) the same
trials through run_together, the two in alternating order, and checks that every trial's
weights and loss curve are the same bits in (a) and (b). Compilation is timed apart (a
warm-up of both paths before the rounds). Reports trials per second, the median over rounds
of each round's ratio, and where the time goes: (a)'s fit overhead outside the epochs, and
(b) again on one Numba thread (--one-thread), which tells the pooled kernel's own per-step
gain apart from the second core's; --kernel times the compiled calls without the fits
around them (train_batches per model against one train_batches_many call). The machine is
shared: the load average is printed.

--same-seed: the trials a sweep groups to train together: every trial random_state 0 (the same
shuffles, so the pooled call gathers each minibatch once for the models of a thread), learning
rates 5e-4..2e-3 and alphas 1e-5..1e-3 differing; --kernel then times models of one order.
"""
import argparse
import os
import time
import warnings

import numpy as np

from mlpfast import bench


def trials(n, epochs, same_seed=False):
    from mlpfast import MLPClassifier
    wl = bench.WORKLOADS["W4"]
    lrs = np.geomspace(5e-4, 2e-3, n)
    alphas = np.geomspace(1e-5, 1e-3, n) if same_seed else np.full(n, 1e-4)
    return [lambda i=i: MLPClassifier(hidden_layer_sizes=wl.hidden, batch_size=wl.batch,
                                      random_state=0 if same_seed else i,
                                      learning_rate_init=float(lrs[i]), alpha=float(alphas[i]),
                                      max_iter=epochs, tol=0.0, n_iter_no_change=10 ** 9)
            for i in range(n)]


def one_after_another(makers, X, y):
    return [m().fit(X, y) for m in makers]


def together(makers, X, y):
    from mlpfast.engine.together import run_together
    out = run_together([lambda m=m: m().fit(X, y) for m in makers])
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


def same_bits(a, b):
    return all(p.loss_curve_ == q.loss_curve_ and
               all(np.array_equal(u, v) for u, v in zip(p.coefs_ + p.intercepts_,
                                                        q.coefs_ + q.intercepts_))
               for p, q in zip(a, b))


def kernel_only(n_models, rounds, threads, same_seed=False):
    """The compiled calls alone, one epoch per model: each model through train_batches one
    after another (as a fit alone runs it) against all of them in one train_batches_many
    call on `threads` threads and on one. Same start, same bits checked. us per model-step."""
    from mlpfast.engine import CPUEngine, NetSpec, together
    from mlpfast.kernels import network, random
    from mlpfast.params import glorot_init, make_layout
    wl = bench.WORKLOADS["W4"]
    X, y = bench.synthetic(wl)
    Y = (y == 1).astype(np.float32).reshape(-1, 1)  # two classes: one logistic output
    spec = NetSpec((wl.features,) + wl.hidden + (1,), 1, 2, np.float32, network.ADAM, wl.batch)
    layout, P = make_layout(spec.widths)
    steps = -(-len(X) // wl.batch)

    def models():
        out = []
        for k in range(n_models):
            theta = np.zeros(P)
            glorot_init(theta, layout, np.random.RandomState(k), "relu")
            e = CPUEngine(spec)
            e.start(theta.astype(np.float32), np.zeros(P, np.float32), np.zeros(P, np.float32),
                    X, None, Y)
            rng = np.array([1 if same_seed else k + 1], np.uint64)
            random.shuffle(e.perm, rng)
            hyper = np.array([1e-3 * (1 + k / 4), 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
            out.append((e, hyper, np.array([0, 0], np.int64), rng, np.zeros(3)))
        return out

    def alone(ms):
        for e, *state in ms:
            e._train(0, steps, *state)

    def pooled(ms, t):
        jobs = [together._Job(e, 0, steps, *state) for e, *state in ms]
        together._Group(0, t)._run_batch(jobs)

    a, b = models(), models()
    alone(a)
    pooled(b, threads)
    if not all(np.array_equal(x[0].theta, z[0].theta) for x, z in zip(a, b)):
        raise SystemExit("train_batches_many differs from train_batches")
    times = {"alone": [], f"pooled, {threads} threads": [], "pooled, 1 thread": []}
    for _ in range(rounds):
        for name, fn in [("alone", lambda: alone(a)),
                         (f"pooled, {threads} threads", lambda: pooled(b, threads)),
                         ("pooled, 1 thread", lambda: pooled(b, 1))]:
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n_models / steps * 1e6)
    print(f"\nthe compiled calls alone, W4, {n_models} models x one epoch"
          f"{', one order' if same_seed else ''}, us per model-step, {rounds} rounds; "
          f"load average {os.getloadavg()[0]:.2f}:")
    for name, v in times.items():
        print(f"  {name:20} median {np.median(v):5.2f}   " + " ".join(f"{x:.2f}" for x in v))


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--one-thread", action="store_true",
                    help="also time (b) on one Numba thread")
    ap.add_argument("--kernel", action="store_true",
                    help="also time the compiled calls alone (no fit around them)")
    ap.add_argument("--same-seed", action="store_true",
                    help="every trial random_state 0 (one order), alphas differing too")
    args = ap.parse_args()
    import numba
    warnings.simplefilter("ignore")  # ConvergenceWarning: the epochs are fixed on purpose
    info = bench.machine()
    threads = numba.get_num_threads()
    print(f"machine: {info['cpu']}, {info['cores']} cores, numba threads {threads} "
          f"({info['threading_layer']}); load average {os.getloadavg()[0]:.2f}")
    print(f"versions: {info['versions']}")
    wl = bench.WORKLOADS["W4"]
    X, y = bench.synthetic(wl)
    makers = trials(args.trials, args.epochs, args.same_seed)

    t_first, _ = timed(one_after_another, makers[:1], X[:2000], y[:2000])
    t_pool, _ = timed(together, makers[:2], X[:2000], y[:2000])
    print(f"compile / first calls: est.fit {t_first:.1f} s, run_together {t_pool:.1f} s "
          "(cached after the first run)")

    seeds = "all seed 0" if args.same_seed else f"seeds 0..{args.trials - 1}"
    alphas = ", alphas 1e-5..1e-3" if args.same_seed else ""
    print(f"\nW4, {args.trials} trials of {args.epochs} epochs ({seeds}, "
          f"learning rates 5e-4..2e-3{alphas}), {args.rounds} rounds")
    seq, pool, one, overhead = [], [], [], []
    for r in range(args.rounds):
        order = [("a", one_after_another), ("b", together)]
        if r % 2:
            order.reverse()
        got = {}
        for name, fn in order:
            got[name] = timed(fn, makers, X, y)
        (ta, fits_a), (tb, fits_b) = got["a"], got["b"]
        if not same_bits(fits_a, fits_b):
            raise SystemExit("run_together's fits differ from the fits alone")
        epochs = sum(sum(h["epoch_seconds"] for h in f.history_) for f in fits_a)
        seq.append(ta)
        pool.append(tb)
        overhead.append((ta - epochs) / args.trials)
        line = (f"  round {r + 1} (load {os.getloadavg()[0]:.2f}): (a) {ta:6.2f} s  (b) {tb:6.2f} s  ratio {ta / tb:4.2f}  "
                f"(a)'s fit overhead {overhead[-1] * 1e3:5.1f} ms per trial")
        if args.one_thread:
            numba.set_num_threads(1)
            try:
                t1, fits_1 = timed(together, makers, X, y)
            finally:
                numba.set_num_threads(threads)
            if not same_bits(fits_a, fits_1):
                raise SystemExit("run_together on one thread differs from the fits alone")
            one.append(t1)
            line += f"  (b) on 1 thread {t1:6.2f} s ({ta / t1:4.2f})"
        print(line, flush=True)
    steps = args.trials * args.epochs * -(-wl.rows // wl.batch)
    ratios = [a / b for a, b in zip(seq, pool)]
    a, b = float(np.median(seq)), float(np.median(pool))
    print(f"\n(a) one after another: {args.trials / a:6.2f} trials/s   "
          f"{a / steps * 1e6:5.2f} us per model-step (fit overhead included)")
    print(f"(b) run_together:      {args.trials / b:6.2f} trials/s   "
          f"{b / steps * 1e6:5.2f} us per model-step")
    if one:
        c = float(np.median(one))
        print(f"(b) on 1 thread:       {args.trials / c:6.2f} trials/s   "
              f"{c / steps * 1e6:5.2f} us per model-step   ratio to (a) "
              f"{np.median([x / y for x, y in zip(seq, one)]):.2f}")
    print(f"ratio (b)/(a) in trials per second: median {np.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}); every trial the same bits; "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.kernel:
        kernel_only(args.trials, args.rounds, threads, args.same_seed)


if __name__ == "__main__":
    main()

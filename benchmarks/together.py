"""Many W4 trials at once: est.fit one after another against engine.together.run_together.

    python benchmarks/together.py [--trials 8] [--epochs 3] [--rounds 5] [--one-thread]

W4 (benchmarks/README.md: 100,000 x 20 standard-normal features, hidden 64, 2 classes,
batch 32, Adam) as a small hyperparameter search: trial i has random_state i (its own
shuffles) and its own learning rate around 1e-3, `--epochs` epochs each (tol=0: no early
stop). Each round times (a) the trials one after another through est.fit and (b) the same
trials through run_together, the two in alternating order, and checks that every trial's
weights and loss curve are the same bits in (a) and (b). Compilation is timed apart (a
warm-up of both paths before the rounds). Reports trials per second, the median over rounds
of each round's ratio, and where the time goes: (a)'s fit overhead outside the epochs, and
(b) again on one Numba thread (--one-thread), which tells the pooled kernel's own per-step
gain apart from the second core's. The machine is shared: the load average is printed.
"""
import argparse
import os
import time
import warnings

import numpy as np

from mlpfast import bench


def trials(n, epochs):
    from mlpfast import MLPClassifier
    wl = bench.WORKLOADS["W4"]
    lrs = np.geomspace(5e-4, 2e-3, n)
    return [lambda i=i: MLPClassifier(hidden_layer_sizes=wl.hidden, batch_size=wl.batch,
                                      random_state=i, learning_rate_init=float(lrs[i]),
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
    makers = trials(args.trials, args.epochs)

    t_first, _ = timed(one_after_another, makers[:1], X[:2000], y[:2000])
    t_pool, _ = timed(together, makers[:2], X[:2000], y[:2000])
    print(f"compile / first calls: est.fit {t_first:.1f} s, run_together {t_pool:.1f} s "
          "(cached after the first run)")

    print(f"\nW4, {args.trials} trials of {args.epochs} epochs (seeds 0..{args.trials - 1}, "
          f"learning rates 5e-4..2e-3), {args.rounds} rounds")
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
        line = (f"  round {r + 1}: (a) {ta:6.2f} s  (b) {tb:6.2f} s  ratio {ta / tb:4.2f}  "
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


if __name__ == "__main__":
    main()

"""Ordinary fits in threads, stepping together: many models in one compiled call.

    from mlpfast.engine.together import run_together
    fits = [lambda s=s: MLPClassifier(random_state=s, batch_size=32).fit(X, y) for s in range(8)]
    models = run_together(fits)      # [fitted estimator or the exception it raised, ...]

run_together(fns) runs each zero-argument callable (an est.fit(...), a whole
mlpfast.tabular.train(...), anything that trains through the CPU engine) in a thread of its
own and returns what each returned, or the exception it raised, in order. Each fit is the
ordinary one, with its own callbacks, early stopping and checkpoints, and ends with the same
bits as alone: only the compiled minibatch runs are pooled.

How: in a thread started here, CPUEngine._run (a run of minibatches: an epoch, or a progress
chunk of one) posts its arguments to the group's rendezvous and waits. Once every participant
still running has posted, the thread that completes the round runs them all: the posted runs
are grouped by what one compiled call can share (widths, hidden activation, output, dtype,
solver, batch size, and training data of one shape), each group of two or more goes through
network.train_batches_many in one call (one model per thread, each over its whole range, no
synchronisation per step), and a run alone in its group through train_batches as outside
run_together; the results are copied back into each fit's own arrays before it goes on.
Training sets are told apart by content (equal arrays are one set, compared once per fit);
fits on different sets of one shape (early stopping's splits by different seeds) share a
call through one stacked copy of the sets, made once, unless the copies would pass
config.TOGETHER_COPY_BYTES (then each set's fits have calls of their own). Results never
depend on the grouping (every model gets train_batches' bits, which do not depend on the
thread count), only the speed does. Participants may post different ranges (progress chunks
are sized by time): the models of a call are spread over the threads longest first.

Fits that share their seed (a sweep's trials that differ in learning rate, alpha, momentum or
dropout) shuffle alike: their orders are found equal (bit for bit, each round) and passed
once, such models go onto a thread side by side, and the kernel gathers their shuffled rows
once for all of them (train_batches_many). The fits of a group on one X also hash it once for
their data digest (hashed(): a private copy of the bytes, compared bit for bit).

A participant that finishes or raises leaves the group and is not waited for. One doing long
work that cannot be pooled (L-BFGS's full-batch gradients, a CUDA epoch) steps aside while it
does (away()), so that the others go on without it; a participant doing other Python work
(reading a CSV, a validation pass) is waited for. Nothing changes in threads not started by
run_together.

Ctrl-C: a KeyboardInterrupt in the thread that called run_together stops every participant
at its next run of minibatches (a run already in progress ends first), each seeing a
KeyboardInterrupt there as an interrupted fit alone would (tabular.train then returns its
interrupted Run); run_together then raises KeyboardInterrupt with the list of results so far
as its `results` attribute. An exception in one participant (a callback raising, say) ends
that participant only.
"""
import contextlib
import threading

import numba
import numpy as np

from .. import config
from ..kernels import buffers, network

_local = threading.local()

# widths of the per-model rows of the small stacked arrays: 64 bytes, one cache line each
_ROW = 8
# the rows gathered at once for models that share their minibatches (train_batches_many's
# gbuf): a thread's block, read once per model from the second-level cache
_GATHER_BLOCK_BYTES = 1 << 18


def current():
    """The group of the calling thread when run_together started it, else None."""
    return getattr(_local, "group", None)


def away(parallel=True):
    """A context in which the calling participant is not waited for (long work that is not
    pooled); a no-op outside run_together. parallel: the work launches Numba parallel regions
    of its own, which then run beside a pooled call; not under Numba's workqueue threading
    layer, which aborts the process on concurrent launches (the participant is then waited
    for, its work and the pooled calls one after the other)."""
    group = current()
    if group is None or (parallel and _layer_is_workqueue()):
        return contextlib.nullcontext()
    return group.away()


def _layer_is_workqueue():
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:  # no parallel region has run yet: the layer asked for
        return numba.config.THREADING_LAYER == "workqueue"


def run_together(fns):
    """Run the zero-argument callables fns, each in its own thread, their CPU minibatch runs
    pooled into compiled calls of several models (see the module's notes). Returns a list with,
    for each callable in order, what it returned or the exception it raised. The threads use
    the caller's Numba thread count for the pooled calls.

    A KeyboardInterrupt while waiting (Ctrl-C) stops every participant at its next run of
    minibatches, waits for them, and is raised again with the results as `results`."""
    fns = list(fns)
    threads = numba.get_num_threads()
    group = _Group(len(fns), threads)
    results = [None] * len(fns)

    finished = [threading.Event() for _ in fns]

    def body(i, fn):
        _local.group = group
        try:
            numba.set_num_threads(threads)
            results[i] = fn()
        except BaseException as exc:  # noqa: B036  (the caller gets it in results)
            results[i] = exc
        finally:
            _local.group = None
            group.leave()
            finished[i].set()

    def wait_all():
        # Event.wait rather than Thread.join: a join interrupted by Ctrl-C marks a thread
        # still running as finished (CPython 3.11, bpo-45274), and a later join returns at once
        for ev in finished:
            while not ev.wait(0.2):
                pass

    started = 0
    try:
        for i, fn in enumerate(fns):
            threading.Thread(target=body, args=(i, fn), name=f"mlpfast-together-{i}",
                             daemon=True).start()
            started += 1
        wait_all()
    except KeyboardInterrupt as exc:
        group.cancel()
        for i in range(started, len(fns)):  # never started: nothing to wait for
            group.leave()
            finished[i].set()
        wait_all()
        exc.results = results
        raise
    return results


class _Job:
    """One posted run of minibatches: CPUEngine._run's arguments."""
    __slots__ = ("engine", "first", "last", "hyper", "counters", "rng", "totals", "ran",
                 "done", "error")

    def __init__(self, engine, first, last, hyper, counters, rng, totals):
        self.engine, self.first, self.last = engine, int(first), int(last)
        self.hyper, self.counters, self.rng, self.totals = hyper, counters, rng, totals
        self.ran = False    # its call is over (set by the thread running the round)
        self.done = False   # its round is over (set under the lock)
        self.error = None


class _Group:
    def __init__(self, n, threads):
        self.cond = threading.Condition()
        self.active = n          # participants running and not away
        self.posted = []
        self.running = False
        self.cancelled = False
        self.threads = threads
        self._datas = []         # the distinct training data seen, by content
        self._stacks = {}        # call key -> _Stack
        self._data_stacks = {}   # call key -> (data indices, their stacked buffers.Data)
        self._hash_lock = threading.Lock()
        self._hashed = []        # _Hashed: data bytes copied, and their hash state

    # ---- the rendezvous

    def train(self, engine, first, last, hyper, counters, rng, totals):
        """CPUEngine._run in a participant: post, wait for the round (running it when this
        post completes it), and return once this run has been done."""
        job = _Job(engine, first, last, hyper, counters, rng, totals)
        with self.cond:
            if self.cancelled:
                raise KeyboardInterrupt("run_together was interrupted")
            self.posted.append(job)
            while not job.done:
                if self._ready():
                    self._run_round()
                else:
                    self.cond.wait()
        if job.error is not None:
            raise job.error

    def _ready(self):
        return bool(self.posted) and not self.running and len(self.posted) >= self.active

    def _run_round(self):
        # with the lock held: take the posted runs, run them without it, mark them done
        batch, self.posted = self.posted, []
        self.running = True
        self.cond.release()
        try:
            self._run_batch(batch)
        except BaseException as exc:  # noqa: B036  (the runs it left undone get it)
            for job in batch:
                if not job.ran:
                    job.error = exc
        finally:
            self.cond.acquire()
            self.running = False
            for job in batch:
                job.done = True
            self.cond.notify_all()

    def leave(self):
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    @contextlib.contextmanager
    def away(self):
        with self.cond:
            if self.cancelled:
                raise KeyboardInterrupt("run_together was interrupted")
            self.active -= 1
            self.cond.notify_all()
        try:
            yield
        finally:
            with self.cond:
                self.active += 1

    def cancel(self):
        """Ctrl-C: the runs waiting for a round fail with KeyboardInterrupt, and so will every
        later post; a round in progress ends first."""
        with self.cond:
            self.cancelled = True
            for job in self.posted:
                job.done = True
                job.error = KeyboardInterrupt("run_together was interrupted")
            self.posted = []
            self.cond.notify_all()

    # ---- work the fits share outside the pooled calls

    def hashed(self, a, make):
        """make() (a hashlib object) after .update(a's bytes), for an array a C-contiguous:
        the fits of a group on one data set hash it once. The first caller copies the bytes
        (up to config.TOGETHER_COPY_BYTES in all) and hashes its private copy; a later caller
        whose bytes equal a copy's bit for bit gets (a copy of) that hash state: the same
        result as hashing its own bytes, whatever was written to the arrays meanwhile. The
        comparisons run while the copy is hashed (both release the GIL)."""
        view = a.reshape(-1).view(np.uint8)
        if view.nbytes < _HASH_SHARE_MIN:
            h = make()
            h.update(view)
            return h
        seen = 0
        entry = None
        while True:
            with self._hash_lock:
                entries = self._hashed[seen:]
                seen = len(self._hashed)
                if not entries:  # none new since the last look: this caller hashes
                    used = sum(e.copy.nbytes for e in self._hashed)
                    if used + view.nbytes <= config.TOGETHER_COPY_BYTES:
                        entry = _Hashed(view.copy())
                        self._hashed.append(entry)
                    break
            for other in entries:
                if other.copy.nbytes == view.nbytes and _equal_bytes(other.copy, view):
                    other.ready.wait()
                    if other.state is not None:
                        return other.state.copy()
        if entry is None:
            h = make()
            h.update(view)
            return h
        try:
            h = make()
            h.update(entry.copy)
            entry.state = h.copy()
        finally:
            entry.ready.set()
        return h

    # ---- a round

    def _run_batch(self, batch):
        # an error in one call fails that call's runs only
        calls = {}
        for job in batch:
            calls.setdefault(self._key(job.engine), []).append(job)
        for key, jobs in calls.items():
            slots = [self._data_index(j.engine) for j in jobs]
            stacked = self._stacked(key, slots)
            if stacked is not None:
                self._call_marking(key, jobs, *stacked)
                continue
            by_data = {}
            for j, slot in zip(jobs, slots):
                by_data.setdefault(slot, []).append(j)
            for slot, some in by_data.items():
                self._call_marking(key, some, _one(self._datas[slot]),
                                   np.zeros(len(some), np.int64))

    def _call_marking(self, key, jobs, ds, dsel):
        try:
            self._call(key, jobs, ds, dsel)
        except Exception as exc:
            for j in jobs:
                j.error = exc
        for j in jobs:
            j.ran = True

    def _key(self, engine):
        """What one compiled call shares: the network, the batch size, the data's shapes."""
        s = engine.spec
        return (tuple(int(w) for w in s.widths), int(s.hidden), int(s.output),
                np.dtype(s.dtype).str, int(s.solver), int(s.batch_size), engine.theta.shape[0],
                tuple((a.shape, a.dtype.str) for a in engine.data))

    def _data_index(self, engine):
        """The index of the engine's training data among those seen (equal data, one index)."""
        d = engine.data
        tag = getattr(engine, "_together_data", None)
        if tag is not None and tag[0] is self and tag[1] is d:
            return tag[2]
        for i, other in enumerate(self._datas):
            if _same_data(d, other):
                break
        else:
            i = len(self._datas)
            self._datas.append(d)
        engine._together_data = (self, d, i)
        return i

    def _stacked(self, key, slots):
        """(ds, dsel) for runs on the data `slots`: views of the one data set they share, or
        the data sets copied into one stack (kept for later rounds); None when the copies
        would pass config.TOGETHER_COPY_BYTES."""
        distinct = list(dict.fromkeys(slots))
        if len(distinct) == 1:
            return _one(self._datas[distinct[0]]), np.zeros(len(slots), np.int64)
        have, ds = self._data_stacks.get(key, ((), None))
        if not set(distinct) <= set(have):
            have = list(have) + [i for i in distinct if i not in have]
            size = sum(a.nbytes for a in self._datas[have[0]])
            if size * len(have) > config.TOGETHER_COPY_BYTES:
                return None
            self._data_stacks.pop(key, None)  # the old stack goes before the new one is made
            ds = buffers.Data(*(np.stack([self._datas[i][f] for i in have])
                                for f in range(len(buffers.Data._fields))))
            self._data_stacks[key] = (have, ds)
        where = {i: p for p, i in enumerate(have)}
        return ds, np.array([where[i] for i in slots], np.int64)

    def _call(self, key, jobs, ds, dsel):
        if len(jobs) == 1:
            j = jobs[0]
            j.engine._train(j.first, j.last, j.hyper, j.counters, j.rng, j.totals)
            return
        K = len(jobs)
        e0 = jobs[0].engine
        spec = e0.spec
        P = e0.theta.shape[0]
        st = self._stacks.get(key)
        if st is None or st.firsts.shape[0] < K:
            # one per call key, for the most models it has had (fewer use its first rows)
            self._stacks.pop(key, None)
            st = self._stacks[key] = _Stack(spec, e0.data, P, K)
        psel = _distinct_perms(jobs, st.perms)
        for k, j in enumerate(jobs):
            e = j.engine
            st.thetas[k, :P] = e.theta
            st.opt1s[k, :e.opt1.shape[0]] = e.opt1
            st.opt2s[k, :e.opt2.shape[0]] = e.opt2
            st.hypers[k, :j.hyper.shape[0]] = j.hyper
            st.counters[k, :j.counters.shape[0]] = j.counters
            st.rngs[k, :j.rng.shape[0]] = j.rng
            st.totals[k, :j.totals.shape[0]] = j.totals
            st.firsts[k] = j.first
            st.lasts[k] = j.last
        # models that step through the same minibatches (same data, same order, same range)
        # go onto a thread together: the kernel gathers their minibatches once
        keys = [(int(dsel[k]), int(psel[k]), j.first, j.last) for k, j in enumerate(jobs)]
        order, bounds = balance(st.lasts[:K] - st.firsts[:K], self.threads, keys)
        network.train_batches_many(
            st.wss, st.S, st.R, ds, dsel, st.perms, st.firsts, st.lasts, spec.batch_size,
            st.thetas, st.grads, st.opt1s, st.opt2s, np.int64(P), e0.layout, e0.widths,
            spec.hidden, e0._output, spec.solver, st.hypers, st.counters, st.rngs, st.totals,
            order, bounds, psel, st.gather(self.threads))
        for k, j in enumerate(jobs):
            e = j.engine
            e.theta[:] = st.thetas[k, :P]
            e.opt1[:] = st.opt1s[k, :e.opt1.shape[0]]
            e.opt2[:] = st.opt2s[k, :e.opt2.shape[0]]
            j.counters[:] = st.counters[k, :j.counters.shape[0]]
            j.rng[:] = st.rngs[k, :j.rng.shape[0]]
            j.totals[:] = st.totals[k, :j.totals.shape[0]]


class _Hashed:
    """A private copy of bytes a group hashed, and the hash state after them (None until
    ready is set, and if the hashing failed)."""
    __slots__ = ("copy", "state", "ready")

    def __init__(self, copy):
        self.copy, self.state, self.ready = copy, None, threading.Event()


def _one(d):
    """One data set as a stack of one: views, no copy."""
    return buffers.Data(*(a[None] for a in d))


class _Stack:
    """The stacked arrays of one compiled call of K models (reused round after round)."""

    def __init__(self, spec, d, P, K):
        self.wss = buffers.train_workspaces(spec.widths, spec.dtype, d.Y.shape[1], P,
                                            spec.batch_size, K)
        self.S, self.R = buffers.workspace_sizes(self.wss)
        line = 64 // np.dtype(spec.dtype).itemsize
        Pp = -(-P // line) * line  # rows of whole cache lines: no line written by two models
        self.thetas = buffers.aligned_zeros((K, Pp), spec.dtype)
        self.grads = buffers.aligned_zeros((K, Pp), spec.dtype)
        self.opt1s = buffers.aligned_zeros((K, Pp), spec.dtype)
        self.opt2s = buffers.aligned_zeros((K, Pp if spec.solver == network.ADAM else 0),
                                           spec.dtype)
        self.perms = np.zeros((K, buffers.n_rows_of(d)), np.int64)
        self.hypers = buffers.aligned_zeros((K, _ROW), np.float64)
        self.counters = buffers.aligned_zeros((K, _ROW), np.int64)
        self.rngs = buffers.aligned_zeros((K, _ROW), np.uint64)
        self.totals = buffers.aligned_zeros((K, _ROW), np.float64)
        self.firsts = np.zeros(K, np.int64)
        self.lasts = np.zeros(K, np.int64)
        self._gather = None
        self._spec, self._d = spec, d

    def gather(self, threads):
        """The threads' blocks of minibatches gathered once for the models that share them
        (train_batches_many's gbuf); no block (nothing shared) for CSR data, whose dense
        rows could be wide."""
        T = max(1, int(threads))
        d = self._d
        sparse = d.indptr.shape[0] > 0
        if self._gather is None or (not sparse and self._gather.X.shape[0] < T):
            dtype, cap = self._spec.dtype, int(self._spec.batch_size)
            rows = 0 if sparse else T
            # G minibatches a block: about GATHER_BLOCK_BYTES of rows
            row = np.dtype(dtype).itemsize * (d.X.shape[1] + d.Y.shape[1]) + 12
            block = cap * max(1, min(-(-buffers.n_rows_of(d) // cap),
                                     _GATHER_BLOCK_BYTES // (cap * row)))
            self._gather = buffers.Data(
                X=buffers.aligned_zeros((rows, block, d.X.shape[1]), dtype),
                data=np.zeros((rows, 0), dtype), indices=np.zeros((rows, 0), np.int64),
                indptr=np.zeros((rows, 0), np.int64),
                y=np.zeros((rows, block if d.y.shape[0] > 0 else 0), np.int32),
                Y=np.zeros((rows, block, d.Y.shape[1]), dtype),
                w=np.zeros((rows, block if d.w.shape[0] > 0 else 0), np.float64))
        return self._gather


def balance(work, threads, keys=None):
    """(order, bounds): models sorted onto up to `threads` threads (thread t runs
    order[bounds[t]:bounds[t+1]]). Without keys, the longest first onto the least loaded.
    Models of equal keys (which step through the same minibatches) form a group: the groups
    go longest total first, each model of a group onto the thread its previous one went to
    while that thread stays within an even share of the work, else onto the least loaded;
    a group's models on one thread are then next to each other in its list."""
    work = [int(w) for w in work]
    K = len(work)
    keys = list(range(K)) if keys is None else list(keys)
    T = max(1, min(K, int(threads)))
    groups = {}
    for k in range(K):
        groups.setdefault(keys[k], []).append(k)
    total = sum(work)
    loads = [0] * T
    lists = [[] for _ in range(T)]
    for ks in sorted(groups.values(), key=lambda ks: (-sum(work[k] for k in ks), ks[0])):
        prev = None
        for k in ks:
            if prev is not None and len(ks) > 1 and (loads[prev] + work[k]) * T <= total:
                t = prev
            else:
                t = min(range(T), key=lambda t: (loads[t], t))
            lists[t].append(k)
            loads[t] += work[k]
            prev = t
    order = np.array([k for ks in lists for k in ks], np.int64)
    bounds = np.cumsum([0] + [len(ks) for ks in lists]).astype(np.int64)
    return order, bounds


def _distinct_perms(jobs, perms):
    """The jobs' orders copied into the rows of perms once each: psel (K,), job k's row.
    Equal orders (fits that share their seed shuffle alike) share a row, compared bit for
    bit, the first entries first (orders that differ usually differ there)."""
    psel = np.zeros(len(jobs), np.int64)
    rows = []  # the orders, one per row of perms
    for k, j in enumerate(jobs):
        p = j.engine.perm
        for q, other in enumerate(rows):
            if other is p or (np.array_equal(other[:64], p[:64]) and np.array_equal(other, p)):
                psel[k] = q
                break
        else:
            psel[k] = len(rows)
            perms[len(rows)] = p
            rows.append(p)
    return psel


def _same_data(a, b):
    """Whether two buffers.Data tuples hold the same arrays (same object, or equal shape,
    dtype and values)."""
    for x, y in zip(a, b):
        if x is y:
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        # bit for bit (0.0 and -0.0 are equal values, not equal bits); the kernels' arrays
        # are C-contiguous (engine.cpu.as_data)
        fx, fy = _bits(x), _bits(y)
        # a cheap look at both ends first: data that differ usually differ there
        if not (np.array_equal(fx[:64], fy[:64]) and np.array_equal(fx[-64:], fy[-64:])):
            return False
        if not np.array_equal(fx, fy):
            return False
    return True


# arrays smaller than this are hashed by each fit (comparing them would save nothing)
_HASH_SHARE_MIN = 1 << 20


def _equal_bytes(a, b):
    """Whether two uint8 arrays of one size hold the same bytes (compared in blocks, 8 at a
    time where the size allows: no temporary the size of the data)."""
    n = a.shape[0]
    if n % 8 == 0:
        a, b = a.view(np.uint64), b.view(np.uint64)
        n //= 8
    step = 1 << 17
    for i in range(0, n, step):
        if not np.array_equal(a[i:i + step], b[i:i + step]):
            return False
    return True


def _bits(a):
    a = np.ascontiguousarray(a).reshape(-1)
    return a.view(np.dtype(f"u{a.itemsize}")) if a.itemsize in (1, 2, 4, 8) else a.view(np.uint8)

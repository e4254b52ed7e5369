"""The update half of a training step: the chunks' gradients summed, L2, the optimizer step, and
the weights packed again for the next step's products; in parallel, in one pass.

Legend: P parameters, S chunks of the minibatch, T tasks, NR columns of a packed panel.

Each task is a block of output rows of one layer, a multiple of NR (buffers.update_tasks):
their weights and biases are contiguous slices of the flat buffers, and they make up whole
forward panels of the layer (columns of B = Wt.T) and the same rows of each of its
input-gradient panels (B = Wt), so a task can pack what it has just updated without waiting
for any other. Every
parameter goes through the same arithmetic whichever task or thread takes it (chunk
gradients added in chunk order), so the split does not change the result; the sums of
squared weights are kept per task and added in task order.

Serially this pass cost W1 25 us and W2 550 us of each step (the sum, L2, Adam and packing
one after the other, with the other threads idle).
"""
import numba as nb
import numpy as np

from . import CACHE
from .addresses import call_at
from .. import config
from .buffers import layer_panels, layer_params
from .matmul import pack_b
from .optim import adam_step, add_l2_to, sgd_step

SGD = 0
ADAM = 1


@nb.njit(error_model="numpy", cache=CACHE)
def _update_slice(theta, grad, opt1, opt2, grads, S, lo, hi, coef, solver, lr, beta_1, beta_2,
                  epsilon, t, momentum, nesterov):
    # parameters lo..hi-1: grad = chunk 0's + the others' in chunk order (+ coef * theta), then
    # the optimizer step; returns the sum of their squares before the step
    g = grad[lo:hi]
    for c in range(S - 1):
        part = grads[c, lo:hi]
        for p in range(hi - lo):
            g[p] += part[p]
    sq = add_l2_to(g, theta[lo:hi], coef) if coef != 0 else 0.0
    if solver == ADAM:
        adam_step(theta[lo:hi], g, opt1[lo:hi], opt2[lo:hi], t, lr, beta_1, beta_2, epsilon)
    else:
        sgd_step(theta[lo:hi], g, opt1[lo:hi], lr, momentum, nesterov)
    return sq


@nb.njit(error_model="numpy", cache=CACHE)
def _task(ws, k, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1, beta_2, epsilon,
          t, momentum, nesterov):
    layer = ws.tasks[k, 0]
    o0 = ws.tasks[k, 1]
    o1 = ws.tasks[k, 2]
    w0 = layout[layer, 0]
    b0 = layout[layer, 1]
    n_in = layout[layer, 2]
    n_out = layout[layer, 3]
    ws.task_sq[k] = _update_slice(theta, grad, opt1, opt2, ws.grads, S, w0 + o0 * n_in,
                                  w0 + o1 * n_in, coef, solver, lr, beta_1, beta_2, epsilon,
                                  t, momentum, nesterov)
    _update_slice(theta, grad, opt1, opt2, ws.grads, S, b0 + o0, b0 + o1, 0.0, solver, lr,
                  beta_1, beta_2, epsilon, t, momentum, nesterov)
    # this block's forward panel, and its rows of every input-gradient panel
    Wt, _ = layer_params(theta, layout, layer)
    NR = ws.wpack.shape[1]
    zero = np.int64(0)
    fwd = layer_panels(ws, layout, layer, zero)
    pack_b(fwd[o0 // NR * n_in: (o1 + NR - 1) // NR * n_in], Wt, np.bool_(True), zero, n_in,
           o0, o1)
    if layer > 0:
        bwd = layer_panels(ws, layout, layer, np.int64(1))
        for p in range((n_in + NR - 1) // NR):
            pack_b(bwd[p * n_out + o0: p * n_out + o1], Wt, np.bool_(False), o0, o1, p * NR,
                   min(n_in, p * NR + NR))


def task_types(ws, theta, grad, opt1, opt2, layout, solver):
    """The argument types update's parallel loop calls _task with, for its Address
    (addresses.address_of, update's task_fn): the arrays' own, int64 for the task, the chunk
    count and the step number, float64 for the coefficients (hyper is float64), solver's and
    a bool for nesterov."""
    i8, f8, t = nb.types.int64, nb.types.float64, nb.typeof
    return (t(ws), i8, t(theta), t(grad), t(opt1), t(opt2), t(layout), i8, f8, t(solver), f8,
            f8, f8, f8, i8, f8, nb.types.boolean)


@nb.njit(error_model="numpy", parallel=True, cache=CACHE)
def _tasks_parallel(ws, workers, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1,
                    beta_2, epsilon, t, momentum, nesterov, task_fn):
    # _task through its address (task_fn): linked, its tree went through LLVM again in each of
    # the parallel loop's three levels and here (kernels/addresses.py)
    T = ws.tasks.shape[0]
    for w_ in nb.prange(workers):
        # worker w takes tasks w, w + workers, ...: layers' tasks differ in size, so
        # interleaving balances them better than contiguous runs
        for k in range(np.int64(w_), T, workers):
            call_at(task_fn, (ws, k, theta, grad, opt1, opt2, layout, S, coef, solver, lr,
                              beta_1, beta_2, epsilon, t, momentum, nesterov))


@nb.njit(error_model="numpy", cache=CACHE)
def update_serial(ws, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1, beta_2,
                  epsilon, t, momentum, nesterov):
    """update on one thread (no task_fn needed)."""
    for k in range(ws.tasks.shape[0]):
        _task(ws, k, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1, beta_2,
              epsilon, t, momentum, nesterov)
    return _sum_task_sq(ws)


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _sum_task_sq(ws):
    # the tasks' sums of squared weights, in task order (the same for any split)
    sq = 0.0
    for k in range(ws.tasks.shape[0]):
        sq += ws.task_sq[k]
    return sq


@nb.njit(error_model="numpy", cache=CACHE)
def update(ws, workers, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1, beta_2,
           epsilon, t, momentum, nesterov, task_fn):
    """grad (chunk 0's gradient) += the other S - 1 chunks' (ws.grads) + coef * weights; one
    step of the optimizer (SGD: opt1 the velocity; ADAM: opt1, opt2 = m, v; t the step number);
    the weights packed into ws.wpack. Returns the sum of squared weights before the step.
    On `workers` threads when the model is large enough to pay for them, calling _task
    through task_fn (its Address for these arguments: task_types)."""
    if workers > 1 and theta.shape[0] >= config.PARALLEL_MIN_PARAMS:
        _tasks_parallel(ws, workers, theta, grad, opt1, opt2, layout, S, coef, solver, lr,
                        beta_1, beta_2, epsilon, t, momentum, nesterov, task_fn)
        return _sum_task_sq(ws)
    return update_serial(ws, theta, grad, opt1, opt2, layout, S, coef, solver, lr, beta_1,
                         beta_2, epsilon, t, momentum, nesterov)

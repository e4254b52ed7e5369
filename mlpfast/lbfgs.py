"""solver='lbfgs': scipy's L-BFGS-B over the compiled full-batch loss and gradient.

The objective is scikit-learn's (weighted mean loss + 0.5 * alpha * ||W||^2 / sum of weights),
evaluated by the engine on the whole training set in one compiled call per evaluation
(CPUEngine.loss_gradient: flat parameter buffer in, flat gradient out, no Python per layer).
L-BFGS-B is scipy's (Byrd, Lu, Nocedal and Zhu 1995, the Fortran code of Zhu et al. 1997, as
scikit-learn uses it): a well-kept optimiser rather than one of our own. scipy is an extra
(`pip install 'mlpfast[lbfgs]'`); scikit-learn users have it already.

The iterate is float64 (scipy works in float64); the engine evaluates in the estimator's dtype,
so a float32 model's objective carries float32 rounding (about 1e-7 relative), which limits how
small `tol` can usefully be.
"""
import warnings

import numpy as np

from .errors import convergence_warning


def _scipy_minimize():
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise ImportError("solver='lbfgs' needs scipy: pip install 'mlpfast[lbfgs]'") from None
    return minimize


def minimize(objective, theta, *, max_iter, max_fun, tol, on_iteration=None):
    """Minimise objective(theta, grad) -> loss, which writes the gradient at theta into grad.

    theta: (P,) float32 or float64, the starting point; on return it holds the solution.
    max_iter: most L-BFGS iterations (scipy's maxiter); max_fun: most objective evaluations
    (maxfun); tol: scipy's gtol (the largest projected-gradient component at which to stop),
    as scikit-learn passes its tol.
    on_iteration(n_iter, loss): called after every iteration.

    Returns (n_iter, loss). Warns ConvergenceWarning, as scikit-learn does, when scipy stops
    for another reason than convergence (max_iter or max_fun reached, a failed line search).
    Raises ImportError naming the extra when scipy is missing.
    """
    run = _scipy_minimize()
    work = np.empty_like(theta)
    grad = np.empty_like(theta)
    iterations = [0]

    def fun(x):
        work[:] = x
        loss = float(objective(work, grad))
        return loss, grad.astype(np.float64)

    def callback(intermediate_result):
        iterations[0] += 1
        if on_iteration is not None:
            on_iteration(iterations[0], float(intermediate_result.fun))

    result = run(fun, theta.astype(np.float64), method="L-BFGS-B", jac=True, callback=callback,
                 options={"maxiter": int(max_iter), "maxfun": int(max_fun), "gtol": float(tol)})
    theta[:] = result.x
    n_iter = min(int(result.nit), int(max_iter))
    if result.status != 0:
        message = result.message
        if isinstance(message, bytes):
            message = message.decode("latin1")
        warnings.warn(f"lbfgs failed to converge after {n_iter} iteration(s) (status="
                      f"{result.status}): {message}. Increase the number of iterations "
                      "(max_iter) or of function evaluations (max_fun), or scale the data.",
                      convergence_warning(), stacklevel=3)
    return n_iter, float(result.fun)

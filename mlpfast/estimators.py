"""MLPClassifier and MLPRegressor with scikit-learn's API, trained by mlpfast's engines.

Parameters, defaults, fitted attributes and the training loop (loss bookkeeping, early
stopping, learning-rate schedules, n_iter_no_change, warm_start, L-BFGS) follow
sklearn.neural_network so that switching is a change of import; scikit-learn's own MLP tests
run against these classes (tests/test_sklearn_suite.py). Output layers as scikit-learn's:
softmax for several classes, one logistic output for two, one per label for a multilabel y,
identity or exp (loss='poisson') for regression. Differences, all deliberate:
- `dtype` (float32 by default) is the training dtype, where scikit-learn uses X's; a
  regressor predicts in X's dtype, probabilities are float64;
- the regressor's reported loss is 0.5 * squared error summed over outputs and averaged over
  rows, the objective whose gradient scikit-learn uses (its reported loss also divides by
  n_outputs);
- `device`, `dtype`, `dropout` and (classifier) `class_weight` are added;
- with early stopping, an epoch whose loss is not finite ends the fit (NaN as its validation
  score) with the best epoch's weights and a ConvergenceWarning; without it, DivergenceError;
- fit() accepts `eval_set=(X_val, y_val[, sample_weight_val])` (used for early stopping in
  place of a split, and for per-epoch validation figures) and `callback`, called after every
  epoch and progress chunk.
`verbose` prints scikit-learn's progress lines to stdout (and logs them to the 'mlpfast'
logger); otherwise nothing is printed.

Where scikit-learn imports, the estimators derive from its BaseEstimator and mixins; where it
does not, the same protocol (get_params, set_params, repr) is written here.
"""
import functools
import inspect
import json
import logging
import time
import types
import warnings

import numpy as np

from . import compiling, config, metrics, params, reference
from ._validation import (check_classification_targets, check_random_state,
                          check_regression_targets, check_X, column_or_1d, dense_targets,
                          feature_names, is_sparse)
from .engine import NetSpec, make_engine, resolve_device
from .errors import DeviceError, DivergenceError, convergence_warning, not_fitted
from .kernels import network
from .registry import ACTIVATIONS, DEVICES, DTYPES, LEARNING_RATES, SOLVERS

log = logging.getLogger("mlpfast")

# what _encode_targets sets from y
_TARGET_STATE = ("classes_", "_multilabel_", "out_activation_", "_Y_width", "_y_1d")

# out_activation_ -> the kernels' output code (mlpfast.kernels.softmax.OUT_*)
OUTPUT_CODES = {"identity": 0, "softmax": 1, "logistic": 2, "exp": 3}

try:
    # scikit-learn is optional: where it imports, the estimators are its own kind (BaseEstimator
    # with the classifier and regressor mixins: tags, html repr, clone, metadata routing)
    from sklearn.base import BaseEstimator as _Base
    from sklearn.base import ClassifierMixin as _ClassifierBase
    from sklearn.base import RegressorMixin as _RegressorBase
    HAVE_SKLEARN = True
except Exception:  # absent, or present and broken: the protocol below, written by hand
    HAVE_SKLEARN = False

    class _Base:
        """scikit-learn's estimator protocol (get_params, set_params, a repr of the changed
        parameters) for when scikit-learn is not importable."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **kwargs):
            valid = self._get_param_names()
            for key, value in kwargs.items():
                if key not in valid:
                    raise ValueError(f"Invalid parameter {key!r} for estimator "
                                     f"{type(self).__name__}. Valid parameters are: {valid!r}.")
                setattr(self, key, value)
            return self

        def __repr__(self):
            defaults = inspect.signature(type(self).__init__).parameters
            changed = []
            for name in self._get_param_names():
                value = getattr(self, name)
                default = defaults[name].default
                same = value is default or (type(value) is type(default) and _equal(value, default))
                if not same:
                    changed.append(f"{name}={value!r}")
            return f"{type(self).__name__}({', '.join(changed)})"

    class _ClassifierBase:
        _estimator_type = "classifier"

    class _RegressorBase:
        _estimator_type = "regressor"


class _stochastic_only:
    """partial_fit as an attribute only where the solver is stochastic: hasattr(estimator,
    'partial_fit') is False for solver='lbfgs', as scikit-learn's available_if makes it."""

    def __init__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        if obj.solver == "lbfgs":
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{obj.solver} is not stochastic.")
        return types.MethodType(self.fn, obj)


class _BaseMLP(_Base):
    _task = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 device="cpu", dtype="float32", dropout=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.device = device
        self.dtype = dtype
        self.dropout = dropout

    def __sklearn_is_fitted__(self):
        return "_theta" in self.__dict__ or "_coefs" in self.__dict__

    def __getstate__(self):
        if "_theta" in self.__dict__:
            self._sync_weights()
        state = self.__dict__.copy()
        state.pop("_engine", None)
        if "_theta" in state:
            # views of theta: rebound on load (pickle would copy them apart from it)
            for derived in ("_coefs", "_intercepts", "_views"):
                state.pop(derived, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # a pickle of an older mlpfast lacks the parameters added since: their defaults
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and name not in self.__dict__:
                setattr(self, name, p.default)
        if "_theta" in state:
            self._bind_views()

    # ---- weights: coefs_ and intercepts_ are views of one flat buffer, theta

    @property
    def coefs_(self):
        """Per-layer weights (n_in, n_out). After a fit these are views of the flat buffer the
        engines train, so editing one in place edits the model. A list assigned here (or
        arrays assigned to its items) is read back as given and copied into the model before
        the next fit, partial_fit, prediction or checkpoint; on an unfitted estimator it
        defines the network (partial_fit, or fit with warm_start=True, trains from it)."""
        try:
            return self.__dict__["_coefs"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'coefs_'") from None

    @coefs_.setter
    def coefs_(self, value):
        self.__dict__["_coefs"] = value

    @coefs_.deleter
    def coefs_(self):
        self.__dict__.pop("_coefs", None)

    @property
    def intercepts_(self):
        """Per-layer biases (n_out,); see coefs_."""
        try:
            return self.__dict__["_intercepts"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                 "'intercepts_'") from None

    @intercepts_.setter
    def intercepts_(self, value):
        self.__dict__["_intercepts"] = value

    @intercepts_.deleter
    def intercepts_(self):
        self.__dict__.pop("_intercepts", None)

    def _sync_weights(self):
        """Copy what the user assigned to coefs_ / intercepts_ (whole lists or items) into
        theta; on an unfitted estimator, build theta and the network's widths from it. Arrays
        are checked against each other (and against a fitted network, or n_features_in_ when
        set): ValueError names the layer."""
        d = self.__dict__
        coefs, inters = d.get("_coefs"), d.get("_intercepts")
        if coefs is None and inters is None:
            return
        views = d.get("_views")
        if views is not None and _same_items(coefs, views[0]) and _same_items(inters, views[1]):
            return  # nothing assigned since the views were bound
        for name, value in (("coefs_", coefs), ("intercepts_", inters)):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list with one array per layer, got "
                                 f"{type(value).__name__}")
        if len(coefs) != len(inters) or not coefs:
            raise ValueError(f"coefs_ has {len(coefs)} layer(s) and intercepts_ {len(inters)}; "
                             "they need one array per layer each")
        fitted = "_theta" in d
        W = [_layer_array(f"coefs_[{i}]", c, 2) for i, c in enumerate(coefs)]
        b = [_layer_array(f"intercepts_[{i}]", c, 1) for i, c in enumerate(inters)]
        for i in range(len(W)):
            if i and W[i].shape[0] != W[i - 1].shape[1]:
                raise ValueError(f"coefs_[{i}] has shape {W[i].shape}: its {W[i].shape[0]} rows "
                                 f"must match the {W[i - 1].shape[1]} columns of coefs_[{i - 1}]")
            if b[i].shape != (W[i].shape[1],):
                raise ValueError(f"intercepts_[{i}] has shape {b[i].shape}; coefs_[{i}] (shape "
                                 f"{W[i].shape}) needs ({W[i].shape[1]},)")
        widths = [W[0].shape[0]] + [w.shape[1] for w in W]
        if fitted and widths != list(self._widths):
            old = self._widths
            if len(widths) != len(old):
                raise ValueError(f"coefs_ has {len(W)} layer(s), the fitted network "
                                 f"{len(old) - 1}")
            i = next(i for i in range(len(W)) if W[i].shape != (old[i], old[i + 1]))
            raise ValueError(f"coefs_[{i}] has shape {W[i].shape}, the fitted network's layer "
                             f"{i} is {(old[i], old[i + 1])}")
        if not fitted:
            n_in = d.get("n_features_in_")
            if n_in is not None and n_in != widths[0]:
                raise ValueError(f"coefs_[0] has {widths[0]} rows, but n_features_in_ is {n_in}")
            _choice("dtype", _dtype_name(self.dtype), DTYPES)
            self._widths = widths
            self._layout, size = params.make_layout(widths)
            self._theta = np.zeros(size, DTYPES[_dtype_name(self.dtype)])
            self.n_features_in_ = widths[0]
            self.n_layers_ = len(widths)
            self.n_outputs_ = widths[-1]
            for stale in ("_opt1", "_opt2", "_best_theta"):
                d.pop(stale, None)
            self._user_weights = True  # the next fit keeps these weights, sets the rest
        params.assign(self._theta, self._layout, W, b)
        if not fitted:
            self._best_theta = self._theta.copy()
        self._bind_views(coefs, inters)

    def _bind_views(self, coefs=None, inters=None):
        """coefs_ and intercepts_ as views of theta. Lists given (the user's) are filled in
        place, so that a list the user holds shows the model's weights."""
        c_views = params.coefs(self._theta, self._layout)
        i_views = params.intercepts(self._theta, self._layout)
        self._views = (tuple(c_views), tuple(i_views))
        for key, given, fresh in (("_coefs", coefs, c_views), ("_intercepts", inters, i_views)):
            if isinstance(given, list) and len(given) == len(fresh):
                given[:] = fresh
                fresh = given
            self.__dict__[key] = fresh

    @property
    def _optimizer(self):
        """The optimizer's state as scikit-learn's `_optimizer` shows it (read-only)."""
        if "_lr" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute '_optimizer'")
        return _OptimizerView(self)

    # ---- hyper-parameters, validated in one place

    def _check_params(self):
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        hidden = list(hidden)
        if any(not _is_int(h) or h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}.")
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("solver", self.solver, {**SOLVERS, "lbfgs": None})
        if not _is_int(self.max_fun) or self.max_fun < 1:
            raise ValueError(f"max_fun must be an integer >= 1, got {self.max_fun!r}.")
        self._check_task_params()
        _choice("learning_rate", self.learning_rate, LEARNING_RATES)
        _choice("device", self.device, DEVICES)
        _choice("dtype", _dtype_name(self.dtype), DTYPES)
        _number("alpha", self.alpha, low=0.0)
        if not (self.batch_size == "auto" or _is_int(self.batch_size)):
            raise ValueError(f"batch_size must be 'auto' or an integer, got {self.batch_size!r}.")
        _number("learning_rate_init", self.learning_rate_init, low=0.0, low_open=True)
        _number("power_t", self.power_t, low=0.0)
        if not _is_int(self.max_iter) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}.")
        # any real > 0: an integer, or np.inf for never stopping on a plateau
        _number("n_iter_no_change", self.n_iter_no_change, low=0.0, low_open=True)
        _number("tol", self.tol, low=0.0)
        _number("momentum", self.momentum, low=0.0, high=1.0)
        _number("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                low_open=True, high_open=True)
        _number("beta_1", self.beta_1, low=0.0, high=1.0, high_open=True)
        _number("beta_2", self.beta_2, low=0.0, high=1.0, high_open=True)
        _number("epsilon", self.epsilon, low=0.0, low_open=True)
        _number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        return [int(h) for h in hidden]

    # ---- fitting

    def fit(self, X, y, sample_weight=None, *, eval_set=None, callback=None):
        """Train for up to max_iter epochs (warm_start=True: max_iter more, from the weights
        the estimator has; n_iter_ counts this fit's epochs, loss_curve_ and t_ go on).
        See the module docstring for eval_set and callback.

        X: (n_samples, n_features) array-like or scipy.sparse matrix (never densified whole).
        sample_weight: (n_samples,) finite weights >= 0, not all 0 (scikit-learn's semantics:
        the loss is the weighted mean, L2 is divided by the sum of the batch's weights, so
        weight 2 counts a row twice); early stopping's validation score is weighted too.
        eval_set: (X_val, y_val) or (X_val, y_val, sample_weight_val).
        solver='lbfgs' runs scipy's L-BFGS-B for up to max_iter iterations and max_fun
        evaluations of the full-batch loss, evaluated in float64 (mlpfast.lbfgs).

        callback(estimator, event) gets event = {'kind': 'chunk', 'epoch', 'rows_done',
        'rows_total', 'loss'} during an epoch and {'kind': 'epoch', 'record'} after it; a
        callback that returns True stops training after the current epoch.
        """
        return self._fit(X, y, incremental=False, eval_set=eval_set, callback=callback,
                         sample_weight=sample_weight)

    # ---- checkpoints: the whole state of a fit, for a resume that ends bit-identical

    _STATE_ARRAYS = ("_theta", "_opt1", "_opt2", "_counters", "_rng", "_best_theta", "_order")
    _STATE_VALUES = ("n_iter_", "t_", "_lr", "_no_improvement_count", "best_loss_",
                     "best_validation_score_", "loss_curve_", "validation_scores_", "history_",
                     "finished_")

    def checkpoint(self):
        """The state of this fit as a dict of NumPy arrays (savable with numpy.savez, no
        pickle): weights, optimizer state (SGD velocity; Adam's m, v and step count), the
        generator of shuffles and dropout, the current row order, the epoch count and the
        position inside an epoch in progress, the learning rate, early stopping's state and
        best weights, and the per-epoch history. Callable from a fit's callback (it then
        describes the state after the progress chunk or epoch just reported) or after fit.
        See resume(). Raises NotFittedError before any fit, ValueError for a fit whose engine
        cannot give its row order (the CUDA engine)."""
        self._check_fitted()
        if self.solver == "lbfgs":
            raise ValueError("a fit with solver='lbfgs' cannot be checkpointed (scipy's "
                             "optimizer keeps its state to itself); use 'adam' or 'sgd'")
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.sync()
            order = engine.order()
            if order is not None:
                self._order = order.copy()
        if not hasattr(self, "_order") or not hasattr(self, "_opt1"):
            raise ValueError("this fit cannot be checkpointed (its engine keeps no row order)")
        state = {name.strip("_"): np.array(getattr(self, name), copy=True)
                 for name in self._STATE_ARRAYS}
        steps, totals = getattr(self, "_position", (0, None))
        values = {name: _jsonable(getattr(self, name, None)) for name in self._STATE_VALUES}
        values.update(params=self.get_params(), widths=list(self._widths), steps=int(steps),
                      out_activation=self.out_activation_,
                      totals=None if totals is None else [float(t) for t in totals],
                      n_features_in_=int(self.n_features_in_),
                      data_digest=getattr(self, "_data_digest", None))
        if self._task == "classification":
            if self.classes_.dtype.kind == "O":
                raise ValueError("a checkpoint needs class labels that are numbers or text")
            state["classes"] = np.array(self.classes_, copy=True)
        state["values"] = np.array(json.dumps(values))
        return state

    def resume(self, state, X, y, sample_weight=None, *, eval_set=None, callback=None):
        """Continue the fit that checkpoint() described, on the same X, y (and eval_set),
        up to max_iter epochs in all. With the same data, an interrupted fit resumed this way
        ends with weights and per-epoch losses bit-identical to one that never stopped.

        This estimator's parameters must equal the checkpoint's (max_iter may differ);
        ValueError names any that do not. Returns self."""
        values = _checked_state(state)
        ours, theirs = self.get_params(), values["params"]
        conflicts = [k for k in theirs if k != "max_iter" and k in ours
                     and _jsonable(ours[k]) != theirs[k]]
        if conflicts:
            shown = ", ".join(f"{k}={ours[k]!r} (checkpoint: {theirs[k]!r})" for k in conflicts)
            raise ValueError(f"the checkpoint was made with other parameters: {shown}")
        self._check_params()
        classes = np.asarray(state["classes"]) if "classes" in state else None
        self._restore(np.array(state["theta"]), values["widths"], classes=classes,
                      out_activation=values.get("out_activation"))
        for name in self._STATE_ARRAYS:
            setattr(self, name, np.array(state[name.strip("_")], copy=True))
        for name in self._STATE_VALUES:
            setattr(self, name, values[name])
        for name in ("loss_curve_", "history_"):
            setattr(self, name, list(getattr(self, name)))
        self._bind_views()
        if self.best_validation_score_ is None and self.early_stopping:
            self.best_validation_score_ = -np.inf
        totals = None if values["totals"] is None else np.array(values["totals"])
        self._data_digest = values.get("data_digest")  # _fit compares the data with it
        if self.finished_:
            raise ValueError(f"the checkpointed fit finished after epoch {self.n_iter_}; there "
                             "is nothing to resume")
        return self._fit(X, y, incremental=False, eval_set=eval_set, callback=callback,
                         position=(values["steps"], totals), sample_weight=sample_weight)

    def _fit(self, X, y, incremental, classes=None, eval_set=None, callback=None, position=None,
             sample_weight=None):
        hidden = self._check_params()
        lbfgs = self.solver == "lbfgs"
        if lbfgs:
            from .lbfgs import _scipy_minimize
            _scipy_minimize()  # scipy missing: say so before anything changes
            if self.dropout > 0:
                raise ValueError("dropout needs a stochastic solver ('adam' or 'sgd'); "
                                 "solver='lbfgs' trains without it")
            if eval_set is not None:
                raise ValueError("eval_set gives per-epoch validation figures and early "
                                 "stopping to the stochastic solvers; solver='lbfgs' has no "
                                 "epochs")
        else:
            device = resolve_device(self.device)  # no usable GPU: said before anything changes
        if incremental and isinstance(self.__dict__.get("class_weight"), str):
            raise ValueError("class_weight='balanced' is computed from the whole y, and "
                             "partial_fit sees one batch: pass a dict of class weights (e.g. "
                             "from sklearn.utils.class_weight.compute_class_weight on all the "
                             "labels)")
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        # position: where a resumed fit (resume()) continues, its state already restored
        reinit = position is None and not incremental and not self.warm_start
        if not reinit:
            self._sync_weights()  # assigned coefs_ / intercepts_ are what training starts from
        user_weights = self.__dict__.get("_user_weights", False)
        first_pass = position is None and (not hasattr(self, "_theta") or reinit)
        # the data decide classes_, feature names and the bookkeeping on a first pass, and
        # also when the weights were assigned by hand to an unfitted estimator
        fresh = first_pass or user_weights
        dtype = DTYPES[_dtype_name(self.dtype)] if first_pass else self._theta.dtype.type
        # L-BFGS evaluates its objective in float64 (its line searches compare losses to
        # about 1e-10), so it reads the data in float64 whatever the model's dtype
        data_dtype = np.float64 if lbfgs else dtype
        names = feature_names(X)
        X = check_X(X, data_dtype, None if first_pass else self._widths[0],
                    owner=type(self).__name__)
        # what the targets decide (classes_, the output kind) is put back if the data are
        # refused: a refit that fails must not leave the old network with new labels
        saved = {k: self.__dict__[k] for k in _TARGET_STATE if k in self.__dict__}
        try:
            y_idx, Y = self._encode_targets(y, data_dtype, first_pass, classes, incremental)
            n_targets = len(Y) if Y.shape[1] or not len(y_idx) else len(y_idx)
            if n_targets != X.shape[0]:
                raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                                 f"[{X.shape[0]}, {n_targets}]")
            w = _check_sample_weight(sample_weight, X.shape[0])
            if self._task == "classification" and len(y_idx):
                cw = self._class_weights(y_idx)
                if cw is not None:
                    w = cw if w is None else w * cw
                    if not w.sum() > 0:
                        raise ValueError("class_weight and sample_weight leave every row with "
                                         "weight 0; give some rows a weight above 0")
            if w is not None and (w == 1.0).all():
                w = None  # unit weights are no weights (the unweighted kernels, the same result)
            if not incremental:
                # the data as given (before any early-stopping split): resume() must get the same
                digest = _digest(X, y_idx if len(y_idx) else Y, w)
                if position is not None and getattr(self, "_data_digest", None) not in (None, digest):
                    raise ValueError("the data differ from the checkpointed fit's (other rows, other "
                                     "sample weights, or the same rows in another order)")
                self._data_digest = digest
        except BaseException:
            for k in _TARGET_STATE:
                self.__dict__.pop(k, None)
            self.__dict__.update(saved)
            raise
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._set_feature_names(names)
            self._initialize(X.shape[1], hidden, random_state, dtype)
        else:
            if fresh:
                self._set_feature_names(names)
                self._init_bookkeeping(keep=True)
                self.out_activation_ = self._out_activation()
            else:
                self._check_feature_names(names)
            if self._widths[-1] != self._n_outputs():
                last = len(self._widths) - 2
                raise ValueError(f"coefs_[{last}] has {self._widths[-1]} output(s); "
                                 f"{self._outputs_needed()}")
        self.__dict__.pop("_user_weights", None)  # set up: later fits go on as usual
        if position is None:
            self.n_iter_ = 0  # each fit (and partial_fit) counts its own epochs, as sklearn
        if position is None and (not incremental or not hasattr(self, "_opt1")):
            self._reset_optimizer(random_state)
        elif position is not None:
            # a resumed fit replays the draws a fresh one made before its validation split,
            # so that early stopping holds out the same rows
            params.glorot_init(np.zeros(self._theta.shape[0]), self._layout, random_state,
                               self.activation)
            random_state.randint(0, 2 ** 62)

        if lbfgs:
            return self._fit_lbfgs(X, y_idx, Y, w, callback)
        early_stopping = self.early_stopping
        X_val = y_val = w_val = None
        if eval_set is not None:
            if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
                raise ValueError("eval_set must be (X_val, y_val) or (X_val, y_val, "
                                 "sample_weight_val)")
            X_val = check_X(eval_set[0], dtype, self.n_features_in_, what="X_val")
            y_val = np.asarray(eval_set[1])
            if self._task == "classification" and not self._multilabel():
                y_val = column_or_1d(y_val, warn=False)
            if len(y_val) != X_val.shape[0]:
                raise ValueError(f"eval_set has {X_val.shape[0]} rows in X_val and "
                                 f"{len(y_val)} in y_val")
            y_val = self._check_y_val(y_val)
            if len(eval_set) == 3:
                w_val = _check_sample_weight(eval_set[2], X_val.shape[0], "sample_weight_val")
        elif early_stopping:
            X, y_idx, Y, w, X_val, y_val, w_val = self._split_validation(X, y_idx, Y, w,
                                                                         random_state)

        n = X.shape[0]
        batch_size = self._batch_size(n)
        if device == "cuda" and self.device == "auto" and dtype != np.float32:
            device = "cpu"  # the CUDA engine trains in float32 only
        self.device_ = device
        spec = NetSpec(tuple(self._widths), ACTIVATIONS[self.activation], self._output_code(),
                       dtype, SOLVERS[self.solver], batch_size)
        if device == "cpu":
            from .engine import together
            kernels = compiling.FIT_EVALUATING if X_val is not None else compiling.FIT
            compiling.announce(kernels + (("together",) if together.current() else ()), dtype)
        engine = make_engine(device, spec)
        engine.start(self._theta, self._opt1, self._opt2, X, y_idx, Y, sample_weight=w)
        if position is not None:
            order = engine.order()
            if order is None or len(order) != len(self._order):
                raise ValueError(f"this checkpoint holds the row order of {len(self._order)} rows "
                                 f"and the data has {n} (or the {device} engine cannot resume)")
            order[:] = self._order
        self._engine = engine
        hyper = np.array([0.0, self.alpha, self.momentum, self.beta_1, self.beta_2,
                          self.epsilon, self.dropout], np.float64)
        self.finished_ = False
        try:
            diverged = self._epochs(engine, hyper, n, early_stopping, X_val, y_val, w_val,
                                    incremental, callback, position)
        finally:
            engine.sync()
            order = engine.order()
            if order is not None:
                self._order = order.copy()
            self._engine = None
        if early_stopping:
            if not np.isfinite(self.best_validation_score_):
                if diverged is not None:
                    raise diverged
                raise ValueError("the validation score was never finite, so early stopping has "
                                 "no best epoch to keep; check the validation data")
            self._theta[:] = self._best_theta
            if diverged is not None:
                warnings.warn(f"Training diverged at epoch {diverged.epoch} (loss "
                              f"{diverged.loss}): early stopping stopped there and kept the "
                              f"weights of the best validation score "
                              f"({self.best_validation_score_:g}); a lower learning_rate_init "
                              f"(now {self.learning_rate_init:g}) may train further.",
                              convergence_warning(), stacklevel=3)
        if not np.isfinite(self._theta).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        return self

    def _output_code(self):
        return OUTPUT_CODES[self.out_activation_]

    def _fit_lbfgs(self, X, y_idx, Y, w, callback):
        """solver='lbfgs': scipy's L-BFGS-B over the full-batch objective, evaluated in float64
        by the CPU engine (mlpfast.lbfgs). n_iter_ counts its iterations; loss_curve_ and
        history_ get the loss after each."""
        from . import lbfgs
        if self.device == "cuda":
            raise ValueError("solver='lbfgs' runs on the CPU; use device='cpu' or 'auto' (or a "
                             "stochastic solver on the GPU)")
        self.device_ = "cpu"
        # early stopping is the stochastic solvers' (scikit-learn ignores it for lbfgs)
        self.validation_scores_ = self.best_validation_score_ = None
        n = X.shape[0]
        # blocks of rows for the objective: memory bounded by the block, its chunks parallel
        block = min(n, config.MAX_CHUNKS * config.CHUNK_ROWS)
        spec = NetSpec(tuple(self._widths), ACTIVATIONS[self.activation], self._output_code(),
                       np.float64, SOLVERS["sgd"], block)
        compiling.announce(compiling.LBFGS, np.float64)
        engine = make_engine("cpu", spec)
        theta = self._theta.astype(np.float64)
        engine.start(theta, theta[:0], theta[:0], X, y_idx, Y, sample_weight=w)
        alpha = float(self.alpha)
        stopped = []

        def on_iteration(i, loss):
            self.n_iter_ = i
            self.loss_curve_.append(loss)
            record = {"epoch": i, "train_loss": loss}
            self.history_.append(record)
            self._say("Iteration %d, loss = %.8f" % (i, loss))
            if callback is not None and callback(self, {"kind": "epoch", "record": record}):
                stopped.append(i)
                raise StopIteration

        self.finished_ = False
        n_iter, loss = lbfgs.minimize(lambda th, g: engine.loss_gradient(th, g, alpha), theta,
                                      max_iter=self.max_iter, max_fun=self.max_fun,
                                      tol=self.tol, on_iteration=on_iteration)
        self.n_iter_ = stopped[0] if stopped else n_iter
        self.loss_ = loss
        self.best_loss_ = min(self.loss_curve_[-self.n_iter_:] or [loss])
        self.finished_ = True
        self._theta[:] = theta
        if not np.isfinite(self._theta).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        return self

    def _loss_grad_lbfgs(self, packed, X, Y, sample_weight=None, *unused):
        """scikit-learn's private hook (its gradient test calls it): the full-batch objective
        at `packed` (scikit-learn's packing: every coefs_ raveled, then every intercepts_) on
        X and the binarized targets Y, and its gradient in the same packing; float64."""
        self._check_fitted()
        X = check_X(X, np.float64, self.n_features_in_)
        Y = np.asarray(Y, np.float64).reshape(X.shape[0], -1)
        order = params.packed_order(self._layout)
        theta = np.empty(len(order))
        theta[order] = packed
        spec = NetSpec(tuple(self._widths), ACTIVATIONS[self.activation], self._output_code(),
                       np.float64, SOLVERS["sgd"], X.shape[0])
        y_idx = np.argmax(Y, axis=1).astype(np.int32) if self.out_activation_ == "softmax" else None
        loss, grad = make_engine("cpu", spec).gradient(
            theta, X, y_idx, None if y_idx is not None else Y, float(self.alpha),
            _check_sample_weight(sample_weight, X.shape[0]))
        return loss, grad[order]

    def _say(self, message):
        """A progress line: printed to stdout as scikit-learn's verbose mode does, and logged."""
        if self.verbose:
            print(message)
            log.info(message)

    def _epochs(self, engine, hyper, n, early_stopping, X_val, y_val, w_val, incremental,
                callback, position=None):
        """The epoch loop, up to max_iter epochs in this fit (a resumed one: in all). Returns
        the DivergenceError of an epoch whose loss was not finite under early stopping (which
        then stops there, with NaN as that epoch's validation score), else None."""
        end = self.max_iter
        while self.n_iter_ < end:
            epoch = self.n_iter_ + 1
            start, partial = (0, None) if position is None else position
            position = None
            self._position = (start, partial)
            hyper[network.H_LR] = self._lr
            progress = None
            if callback is not None:
                # a watched fit learns of a non-finite loss in the chunk where it appears
                def progress(done, total, totals, epoch=epoch):
                    loss = totals[network.T_LOSS] / max(totals[network.T_ROWS], 1)
                    steps = -(-done // engine.spec.batch_size)
                    if not np.isfinite(loss):
                        raise DivergenceError(epoch, steps, float(loss), self._lr)
                    # what checkpoint() records of an epoch in progress
                    self._position = (steps, totals.copy())
                    callback(self, {"kind": "chunk", "epoch": epoch, "rows_done": done,
                                    "rows_total": total, "loss": loss})
            t0 = time.perf_counter()
            try:
                totals = engine.train_epoch(self._rng, self.shuffle, hyper, self._counters,
                                            progress, start, partial)
                if not np.isfinite(totals[network.T_LOSS]):
                    raise DivergenceError(epoch, None, float(totals[network.T_LOSS] / n), self._lr)
            except DivergenceError as exc:
                if not early_stopping:
                    raise
                self._diverged_epoch(exc, n, time.perf_counter() - t0, callback)
                return exc
            seconds = time.perf_counter() - t0
            self.n_iter_ += 1
            self.loss_ = float(totals[network.T_LOSS] / n)
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            record = {"epoch": self.n_iter_, "train_loss": self.loss_}
            if self._task == "classification":
                record["train_accuracy"] = float(totals[network.T_CORRECT] / n)
            if X_val is not None:
                engine.sync()
                record.update(self._validation_figures(X_val, y_val, w_val))
            record.update(learning_rate=self._lr, epoch_seconds=seconds,
                          samples_per_second=n / seconds if seconds > 0 else float("inf"))
            self.history_.append(record)
            self._say("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement(early_stopping, record.get("val_score"))
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            stop = False
            if self._no_improvement_count > self.n_iter_no_change:
                stop = self._plateau(early_stopping)
            self._position = (0, None)
            self.finished_ = stop or self.n_iter_ >= end
            if callback is not None and callback(self, {"kind": "epoch", "record": record}):
                stop = True
            if stop or incremental:
                self.finished_ = True
                break
            if self.n_iter_ == end:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              convergence_warning(), stacklevel=4)
        return None

    def _plateau(self, early_stopping):
        """n_iter_no_change epochs without improvement: whether to stop (sgd with the
        'adaptive' schedule divides the learning rate by 5 instead, down to 1e-6)."""
        what = "Validation score" if early_stopping else "Training loss"
        msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
            what, self.tol, self.n_iter_no_change)
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            self._say(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            self._say(msg + " Learning rate too small. Stopping.")
            return True
        self._lr /= 5.0
        self._no_improvement_count = 0
        self._say(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _diverged_epoch(self, exc, n, seconds, callback):
        """Early stopping's record of an epoch whose loss was not finite: NaN as its
        validation score; the fit stops there and keeps its best epoch's weights."""
        self.n_iter_ += 1
        self.loss_ = float(exc.loss)
        self.t_ += n
        self.loss_curve_.append(self.loss_)
        self.validation_scores_.append(float("nan"))
        self._no_improvement_count += 1
        # the fields of a finished epoch's record (readers such as the CLI expect them all)
        record = {"epoch": self.n_iter_, "train_loss": self.loss_}
        if self._task == "classification":
            record["train_accuracy"] = float("nan")
        record.update(val_loss=float("nan"), val_score=float("nan"), learning_rate=self._lr,
                      epoch_seconds=seconds,
                      samples_per_second=n / seconds if seconds > 0 else float("inf"))
        self.history_.append(record)
        self._say("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        self._say("Validation score: %f" % float("nan"))
        self._position = (0, None)
        self.finished_ = True
        if callback is not None:
            callback(self, {"kind": "epoch", "record": record})

    def _update_no_improvement(self, early_stopping, val_score):
        if early_stopping:
            val_score = float(val_score)
            self.validation_scores_.append(val_score)
            self._say("Validation score: %f" % val_score)
            if not np.isfinite(val_score) or val_score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                self._engine.sync()
                self._best_theta[:] = self._theta
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _initialize(self, n_features, hidden, random_state, dtype):
        self.n_features_in_ = n_features
        self._widths = [n_features] + hidden + [self._n_outputs()]
        self.n_layers_ = len(self._widths)
        self.n_outputs_ = self._widths[-1]
        self.out_activation_ = self._out_activation()
        self._layout, size = params.make_layout(self._widths)
        theta = np.zeros(size, np.float64)
        params.glorot_init(theta, self._layout, random_state, self.activation)
        self._theta = theta.astype(dtype)
        self._best_theta = self._theta.copy()
        self._bind_views()
        self._init_bookkeeping(keep=False)
        for stale in ("_opt1", "_opt2"):
            self.__dict__.pop(stale, None)

    def _init_bookkeeping(self, keep):
        """The per-fit records of a first fit; keep=True leaves those already set (by a user
        who assigned weights and, as scikit-learn's tests do, some of these)."""
        values = dict(n_iter_=0, t_=0, loss_curve_=[], history_=[], _no_improvement_count=0)
        if self.early_stopping:
            values.update(validation_scores_=[], best_validation_score_=-np.inf, best_loss_=None)
        else:
            values.update(best_loss_=np.inf, validation_scores_=None, best_validation_score_=None)
        for name, value in values.items():
            if not keep or getattr(self, name, None) is None:
                setattr(self, name, value)

    def _restore(self, theta, widths, classes=None, out_activation=None):
        """Rebuild a fitted estimator from saved weights (see mlpfast.model_io). out_activation
        None: the one its widths imply (a classifier with one output: logistic)."""
        self._check_params()
        self._widths = list(widths)
        self._layout, size = params.make_layout(self._widths)
        if theta.shape != (size,):
            raise ValueError(f"{theta.shape[0]} weights saved for a network that needs {size}")
        self._theta = np.ascontiguousarray(theta)
        self._best_theta = self._theta.copy()
        self._bind_views()
        self.n_features_in_ = self._widths[0]
        self.n_layers_ = len(self._widths)
        self.n_outputs_ = self._widths[-1]
        if classes is not None:
            self.classes_ = classes
            if out_activation is None:
                out_activation = "logistic" if self._widths[-1] == 1 else "softmax"
            self._multilabel_ = out_activation == "logistic" and self._widths[-1] > 1
        self.out_activation_ = out_activation or self._out_activation()
        if classes is None:
            self._Y_width = self._widths[-1]
            self._y_1d = self._Y_width == 1

    def _reset_optimizer(self, random_state):
        self._opt1 = np.zeros_like(self._theta)
        self._opt2 = np.zeros_like(self._theta) if self.solver == "adam" else self._opt1[:0]
        self._counters = np.array([0, int(bool(self.nesterovs_momentum))], np.int64)
        self._lr = float(self.learning_rate_init)
        # the compiled generator (shuffles, dropout) is seeded from the estimator's random_state
        self._rng = np.array([random_state.randint(0, 2 ** 62)], np.uint64)

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size < 1 or self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                          "It is going to be clipped", stacklevel=4)
        return int(np.clip(self.batch_size, 1, n))

    def _split_validation(self, X, y_idx, Y, w, random_state):
        n = X.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n))
        if n - n_val < 1:
            raise ValueError(f"With n_samples={n}, validation_fraction="
                             f"{self.validation_fraction}, the training set left by early "
                             "stopping's split would be empty. Lower 'validation_fraction' or "
                             "add rows.")
        if self._task == "classification" and len(y_idx):
            counts = np.bincount(y_idx, minlength=len(self.classes_))
            few = (counts > 0) & (counts < 2)
            if few.any():
                shown = self.classes_[few].tolist()
                if self.out_activation_ == "logistic":
                    # one logistic output: its target is y == classes_[1], True or False
                    shown = (f"{[str(bool(i)) for i in np.flatnonzero(few)]} (the logistic "
                             f"output's target for label(s) {shown})")
                raise ValueError(
                    "The least populated classes in y have only 1 member, which is too few. "
                    "The minimum number of members in any class cannot be less than 2. Classes "
                    f"with too few members are: {shown}")
        if n_val < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        if self._task == "classification" and len(y_idx):
            val = _stratified_pick(y_idx, n_val, random_state)
        else:
            val = random_state.permutation(n)[:n_val]
        mask = np.zeros(n, bool)
        mask[val] = True
        if self._task == "regression":
            y_val = self._unshape(Y[mask])
        elif self._multilabel():
            y_val = Y[mask].astype(int)
        else:
            y_val = self.classes_[y_idx[mask]]
        # a regressor has no class indices (y_idx is empty), a softmax classifier no Y columns
        y_idx = y_idx[~mask] if len(y_idx) else y_idx
        w_train, w_val = (None, None) if w is None else (w[~mask], w[mask])
        for part, weights in (("training", w_train), ("validation", w_val)):
            if weights is not None and not weights.sum() > 0:
                raise ValueError(f"early stopping's split left every {part} row with sample "
                                 "weight 0; give more rows a weight above 0, or change "
                                 "validation_fraction or random_state")
        return (_rows(X, ~mask), np.ascontiguousarray(y_idx), np.ascontiguousarray(Y[~mask]),
                w_train, _rows(X, mask), y_val, w_val)

    # ---- prediction

    def _raw(self, X, check_names=True):
        """The network's raw outputs for X in float64: the output layer's pre-activation of a
        classifier (its scores), a regressor's predictions. check_names=False: X is the
        estimator's own array (early stopping's validation rows), whose names were checked."""
        self._check_fitted()
        if check_names:
            self._check_feature_names(feature_names(X))
        X = check_X(X, self._theta.dtype, self.n_features_in_, owner=type(self).__name__)
        spec = NetSpec(tuple(self._widths), ACTIVATIONS[self.activation], 0,
                       self._theta.dtype.type, SOLVERS.get(self.solver, 0), 1)
        device = self._predict_device(sparse=is_sparse(X))
        announced = (compiling.announce(compiling.PREDICT, self._theta.dtype)
                     if device == "cpu" else [])
        t0 = time.perf_counter()
        engine = make_engine(device, spec)
        out = engine.predict(self._theta, X).astype(np.float64)
        compiling.finished(announced, self._theta.dtype, time.perf_counter() - t0)
        return out

    def _predict_device(self, sparse=False):
        """Where the model trained, if that device is still usable (a model trained on a GPU
        and loaded elsewhere predicts on the CPU)."""
        if getattr(self, "device_", "cpu") != "cuda" or self._theta.dtype != np.float32 or \
                sparse:
            return "cpu"  # the CUDA engine takes dense X only
        try:
            return resolve_device(self.device)
        except DeviceError:
            return "cpu"

    def _check_fitted(self):
        self._sync_weights()
        if "_theta" not in self.__dict__:
            raise not_fitted(f"This {type(self).__name__} instance is not fitted yet. Call "
                             "'fit' with appropriate arguments before using this estimator.")

    def _set_feature_names(self, names):
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _check_feature_names(self, names):
        fitted = getattr(self, "feature_names_in_", None)
        cls = type(self).__name__
        if names is None and fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                          "feature names", UserWarning, stacklevel=4)
        elif names is not None and fitted is None:
            warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                          UserWarning, stacklevel=4)
        elif names is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            raise ValueError("The feature names should match those that were passed during fit.")

    def __sklearn_tags__(self):
        # BaseEstimator's tags, with the mixin's estimator type and target tags on top
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = self._task == "regression"
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True  # scipy.sparse X: gathered a minibatch at a time
        return tags


class MLPClassifier(_ClassifierBase, _BaseMLP):
    """Multi-layer perceptron classifier, as scikit-learn's.

    Output layer by target (scikit-learn's choice): several classes in a 1-D y: softmax and
    categorical cross-entropy; two classes: one logistic output and binary cross-entropy;
    a 2-D 0/1 indicator y (multilabel): one logistic output per label. class_weight (None,
    'balanced' or {label: weight}; beyond scikit-learn's MLP) multiplies each row's
    sample_weight by its class's weight; 'balanced' is n_samples / (n_classes * count).

    >>> from mlpfast import MLPClassifier
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3])
    """
    _task = "classification"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 device="cpu", dtype="float32", dropout=0.0,
                 class_weight=None):
        # every parameter spelt out, as scikit-learn's estimators do: get_params, clone and
        # help() read them from this signature
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, device=device,
            dtype=dtype, dropout=dropout)
        self.class_weight = class_weight

    def _check_task_params(self):
        cw = self.class_weight
        if cw is None or (isinstance(cw, str) and cw == "balanced"):
            return
        if not isinstance(cw, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict of label: weight, "
                             f"got {cw!r}.")
        for label, w in cw.items():
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(w) or w < 0:
                raise ValueError(f"class_weight gives label {label!r} the weight {w!r}; weights "
                                 "must be finite numbers >= 0.")

    def _multilabel(self):
        return self.__dict__.get("_multilabel_", False)

    def _n_outputs(self):
        if self._multilabel():
            return len(self.classes_)
        # a softmax network (of an older mlpfast) keeps its output per class
        if self.__dict__.get("out_activation_") == "softmax":
            return len(self.classes_)
        return 1 if len(self.classes_) <= 2 else len(self.classes_)

    def _outputs_needed(self):
        if self._n_outputs() == 1:
            return f"the output layer needs 1 (a logistic output for classes {self.classes_.tolist()!r})"
        return (f"the output layer needs {len(self.classes_)}, one per "
                f"{'label' if self._multilabel() else 'class'} in {self.classes_.tolist()!r}")

    def _out_activation(self):
        if self.__dict__.get("out_activation_") == "softmax" and len(self.classes_) == 2 \
                and getattr(self, "_widths", [0])[-1] == 2:
            return "softmax"
        return "logistic" if self._multilabel() or len(self.classes_) <= 2 else "softmax"

    def _encode_targets(self, y, dtype, reset, classes, incremental):
        """(y_idx, Y): class indices (N,) int32 of a 1-D y, and the logistic outputs' targets
        (N, 1) for two classes, (N, n_labels) for a multilabel y, else (N, 0)."""
        y = dense_targets(y)
        y = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
        if y.ndim == 2 and y.shape[1] > 1:
            return self._encode_multilabel(y, dtype, reset, classes, incremental)
        if not reset and self._multilabel():
            raise ValueError(f"y is 1-D; this classifier was fitted on a multilabel y with "
                             f"{len(self.classes_)} labels")
        y = column_or_1d(y)
        check_classification_targets(y)
        if not reset and isinstance(self.__dict__.get("classes_"), (list, tuple)):
            self.classes_ = _unique(np.asarray(self.classes_))  # set by hand, as a list
        # classes_ taken from y itself just now: every label of y is one of them (checking it
        # again would sort y a second time, a third of the encoding's time)
        from_y = False
        if reset or not hasattr(self, "classes_"):
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = _unique(np.asarray(classes) if classes is not None else y)
            from_y = classes is None
            self._multilabel_ = False
            if reset:  # a new network: its output follows these classes
                self.__dict__.pop("out_activation_", None)
        elif classes is not None and not np.array_equal(_unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"`classes={list(classes)!r}` is not the same as on the first call "
                             f"to partial_fit, which was {self.classes_.tolist()!r}")
        elif self.warm_start and not incremental and not np.array_equal(_unique(y), self.classes_):
            raise ValueError("warm_start can only be used where `y` has the same classes as in "
                             f"the previous call to fit. Previously got {self.classes_}, `y` has "
                             f"{_unique(y)}")
        unknown = () if from_y else np.setdiff1d(_unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"y contains labels not seen in classes_: {unknown[:5].tolist()}")
        y_idx = np.searchsorted(self.classes_, y).astype(np.int32)
        if self._out_activation() == "logistic":
            return y_idx, (y_idx == 1).astype(dtype).reshape(-1, 1)
        return y_idx, np.zeros((len(y), 0), dtype)

    def _encode_multilabel(self, Y, dtype, reset, classes, incremental):
        if Y.dtype.kind not in "biuf" or not np.isin(Y, (0, 1)).all():
            raise ValueError("a 2-D y is a multilabel indicator matrix and must hold only 0 and "
                             "1 (one column per label)")
        if self.class_weight is not None:
            raise ValueError("class_weight is not supported for a multilabel y; pass "
                             "sample_weight")
        labels = np.arange(Y.shape[1])
        if reset or not hasattr(self, "classes_"):
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            if classes is not None and not np.array_equal(_unique(np.asarray(classes)), labels):
                raise ValueError(f"classes={list(classes)!r}: a multilabel y with {Y.shape[1]} "
                                 f"columns has the labels {labels.tolist()}")
            self.classes_ = labels
            self._multilabel_ = True
        elif not self._multilabel() or len(self.classes_) != Y.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} label columns; this classifier was fitted on "
                             + (f"{len(self.classes_)}" if self._multilabel() else "a 1-D y"))
        return np.zeros(0, np.int32), np.ascontiguousarray(Y, dtype=dtype)

    def _check_y_val(self, y_val):
        """eval_set's labels, checked as fit checks y: what the validation score compares."""
        if self._multilabel():
            y_val = np.asarray(dense_targets(y_val))
            if y_val.ndim != 2 or y_val.shape[1] != len(self.classes_) or \
                    not np.isin(y_val, (0, 1)).all():
                raise ValueError(f"eval_set's y_val must be a 0/1 indicator with "
                                 f"{len(self.classes_)} columns, as y, got shape {y_val.shape}")
            return y_val
        unknown = [v for v in _unique_list(y_val) if not np.isin([v], self.classes_)[0]]
        if unknown:
            raise ValueError(f"eval_set's y_val has labels that are not classes: "
                             f"{unknown[:5]!r}; the classes are {self.classes_.tolist()!r}")
        return y_val

    def _class_weights(self, y_idx):
        """Each row's class weight (N,) float64, or None without class_weight."""
        cw = self.class_weight
        if cw is None:
            return None
        k = len(self.classes_)
        if isinstance(cw, str):  # 'balanced', over the classes present in this y
            counts = np.bincount(y_idx, minlength=k).astype(np.float64)
            per = np.where(counts > 0, len(y_idx) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
            return per[y_idx]
        per = np.ones(k)
        seen = {}
        texts = [str(c) for c in self.classes_.tolist()]
        for label, w in cw.items():
            hits = np.flatnonzero(self.classes_ == label) if not isinstance(label, str) or \
                self.classes_.dtype.kind in "OUS" else np.empty(0, int)
            if not len(hits):  # a label written as text (a JSON key): by its text
                hits = [i for i, t in enumerate(texts) if t == str(label)]
            if not len(hits):
                raise ValueError(f"class_weight names the label {label!r}, which is not a class; "
                                 f"the classes are {self.classes_.tolist()!r}")
            if hits[0] in seen:
                raise ValueError(f"class_weight names the class {self.classes_.tolist()[hits[0]]!r} "
                                 f"twice ({seen[hits[0]]!r} and {label!r})")
            seen[hits[0]] = label
            per[hits[0]] = float(w)
        return per[y_idx]

    def _check_fitted(self):
        super()._check_fitted()
        if "classes_" not in self.__dict__:
            raise not_fitted(f"This {type(self).__name__} has weights but no classes_: call "
                             "'fit' or 'partial_fit' (with classes) before using it.")

    @_stochastic_only
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Exactly one epoch over (X, y). `classes` (all labels) is required on the first call.
        n_iter_ is then 1, as in scikit-learn; t_ and loss_curve_ count every call."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _proba(self, Z):
        """Probabilities from raw scores Z (float64, changed in place)."""
        if self.out_activation_ == "softmax":
            Z -= Z.max(axis=1, keepdims=True)
            np.exp(Z, out=Z)
            Z /= Z.sum(axis=1, keepdims=True)
            return Z
        P = _sigmoid(Z)
        return P if self._multilabel() else np.hstack([_sigmoid(-Z), P])

    def predict_proba(self, X):
        """(n_samples, n_classes) float64 class probabilities, columns in the order of
        classes_ (softmax of the output scores; with two classes [1 - p, p] of the logistic
        output); for a multilabel classifier (n_samples, n_labels), each label's probability.
        Taken in float64 from the network's scores."""
        return self._proba(self._raw(X))

    def predict_log_proba(self, X):
        """log of predict_proba, taken from the scores (finite where a probability rounds
        to 0)."""
        Z = self._raw(X)
        if self.out_activation_ == "softmax":
            Z -= Z.max(axis=1, keepdims=True)
            return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        # the log of predict_proba's values, so that both rank the labels alike where
        # probabilities round to 1; where one rounds to 0, -log(1 + exp(-z)) keeps it finite
        exact = -np.logaddexp(0.0, -Z)
        if not self._multilabel():
            exact = np.hstack([-np.logaddexp(0.0, Z), exact])
        P = self._proba(Z)
        with np.errstate(divide="ignore"):
            return np.where(P > 0, np.log(P), exact)

    def _labels(self, proba):
        if self._multilabel():
            return (proba > 0.5).astype(int)
        if proba.shape[1] == 2 and len(self.classes_) <= 2:
            # scikit-learn's threshold for its logistic output: p > 0.5 is the second class
            return self.classes_[(proba[:, 1] > 0.5).astype(int) if len(self.classes_) == 2
                                 else np.zeros(len(proba), int)]
        return self.classes_[np.argmax(proba, axis=1)]

    def predict(self, X):
        """Labels (n_samples,), or the (n_samples, n_labels) 0/1 indicator of a multilabel
        classifier."""
        return self._labels(self.predict_proba(X))

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (weighted by sample_weight); of a multilabel classifier, the share of
        rows whose labels are all right (scikit-learn's subset accuracy). Labels of another
        kind than classes_ (strings against numbers) raise ValueError, as scikit-learn's
        accuracy_score does."""
        pred = self.predict(X)
        w = _check_sample_weight(sample_weight, len(pred))
        if self._multilabel():
            y = np.asarray(dense_targets(y))
            if y.shape != pred.shape:
                raise ValueError(f"y has shape {y.shape}; the predictions have {pred.shape}")
            return float(np.average((pred == y).all(axis=1), weights=w))
        y = column_or_1d(y, warn=False)
        if len(y) != len(pred):
            raise ValueError("Found input variables with inconsistent numbers of samples: "
                             f"[{len(y)}, {len(pred)}]")
        _check_label_kinds(y, pred)
        return float(np.average(pred == y, weights=w))

    def _validation_figures(self, X_val, y_val, w_val=None):
        Z = self._raw(X_val, check_names=False)
        with np.errstate(all="ignore"):  # a diverged network's scores: NaN figures
            return self._figures(Z, y_val, w_val)

    def _figures(self, Z, y_val, w_val):
        if self._multilabel():
            Y = np.asarray(y_val, np.float64)
            right = ((_sigmoid(Z) > 0.5) == (Y > 0.5)).all(axis=1)
            return {"val_loss": reference.binary_xent_loss(Z, Y, w_val),
                    "val_score": float(np.average(right, weights=w_val))}
        pred = self._labels(self._proba(Z.copy()))
        known = np.isin(y_val, self.classes_)
        idx = np.searchsorted(self.classes_, y_val[known])
        w_known = None if w_val is None else w_val[known]
        if self.out_activation_ == "softmax":
            loss = reference.xent_loss(Z[known], idx, w_known)
        else:
            loss = reference.binary_xent_loss(Z[known], (idx == 1).astype(float).reshape(-1, 1),
                                              w_known)
        return {"val_loss": float(loss),
                "val_score": float(np.average(np.asarray(y_val) == pred, weights=w_val))}


class MLPRegressor(_RegressorBase, _BaseMLP):
    """Multi-layer perceptron regressor: identity output, squared-error loss.

    >>> from mlpfast import MLPRegressor
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), max_iter=50, random_state=0).fit(X, y)
    """
    _task = "regression"

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 device="cpu", dtype="float32", dropout=0.0):
        # every parameter spelt out, as scikit-learn's estimators do: get_params, clone and
        # help() read them from this signature
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, device=device,
            dtype=dtype, dropout=dropout)
        self.loss = loss

    def _check_task_params(self):
        if not isinstance(self.loss, str):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}: "
                             "MLPRegressor's first positional argument is loss, as in "
                             "scikit-learn; pass the layers as hidden_layer_sizes=...")
        _choice("loss", self.loss, ("squared_error", "poisson"))

    def _n_outputs(self):
        return self._Y_width

    def _outputs_needed(self):
        return f"y has {self._Y_width} target(s)"

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _encode_targets(self, y, dtype, reset, classes, incremental):
        y = check_regression_targets(y, dtype)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(f"loss='poisson' needs y >= 0 (counts or rates); y has negative "
                             f"values, the smallest {float(y.min())!r}")
        Y = np.ascontiguousarray(y.reshape(len(y), -1))
        if reset or not hasattr(self, "_Y_width"):
            self._Y_width = Y.shape[1]
            self._y_1d = y.ndim == 1
        elif Y.shape[1] != self._Y_width:
            raise ValueError(f"y has {Y.shape[1]} targets, the model was fitted with {self._Y_width}.")
        return np.zeros(0, np.int32), Y

    def _unshape(self, Y):
        one_d = getattr(self, "_y_1d", Y.shape[1] == 1)
        return Y.ravel() if one_d else Y

    @_stochastic_only
    def partial_fit(self, X, y, sample_weight=None):
        """Exactly one epoch over (X, y). n_iter_ is then 1, as in scikit-learn; t_ and
        loss_curve_ count every call."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predictions in X's dtype when X is float32 or float64 (float64 otherwise), as
        scikit-learn's, whatever the dtype the network trained in."""
        out_dtype = _float_dtype_of(X)
        Z = self._raw(X)
        if self.out_activation_ == "exp":
            np.exp(Z, out=Z)
        return self._unshape(Z).astype(out_dtype, copy=False)

    def score(self, X, y, sample_weight=None):
        """R^2 (weighted by sample_weight), averaged uniformly over targets."""
        pred = self.predict(X)
        y = self._check_y_val(y, what="y")
        if len(y) != len(pred):
            raise ValueError("Found input variables with inconsistent numbers of samples: "
                             f"[{len(y)}, {len(pred)}]")
        w = _check_sample_weight(sample_weight, len(pred))
        return metrics.r2(y, pred, w)

    def _check_y_val(self, y_val, what="eval_set's y_val"):
        """Targets to score against: finite numbers, as many columns as the model has
        outputs (>= 0 for loss='poisson')."""
        try:
            y = np.asarray(dense_targets(y_val), np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what} holds values that are not numbers") from None
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        width = 1 if y.ndim == 1 else y.shape[1]
        if y.ndim not in (1, 2) or width != self._widths[-1]:
            raise ValueError(f"{what} has shape {y.shape}; the model has {self._widths[-1]} "
                             "output(s)")
        if not np.isfinite(y).all():
            raise ValueError(f"Input {what} contains NaN or infinity.")
        if self.out_activation_ == "exp" and (y < 0).any():
            raise ValueError(f"{what} has negative values; loss='poisson' needs y >= 0")
        return y

    def _validation_figures(self, X_val, y_val, w_val=None):
        Z = self._raw(X_val, check_names=False)
        Y = np.asarray(y_val, np.float64).reshape(len(Z), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            pred = np.exp(Z) if self.out_activation_ == "exp" else Z
            if not np.isfinite(pred).all():  # overflowing weights: no score (NaN), as sklearn
                return {"val_loss": float("nan"), "val_score": float("nan")}
            loss = (reference.poisson_loss if self.out_activation_ == "exp" else
                    reference.squared_loss)(Z, Y, w_val)
        return {"val_loss": float(loss), "val_score": metrics.r2(Y, pred, w_val)}


# ---- helpers

class _OptimizerView:
    """What scikit-learn's `_optimizer` shows: the current learning_rate (read-only). For
    Adam it is the step size after bias correction, learning_rate_init * sqrt(1 - beta_2**t)
    / (1 - beta_1**t) after t steps, as scikit-learn's AdamOptimizer reports it."""

    def __init__(self, estimator):
        self._estimator = estimator

    @property
    def learning_rate_init(self):
        return float(self._estimator.learning_rate_init)

    @property
    def learning_rate(self):
        est = self._estimator
        lr = float(est._lr)
        t = int(est._counters[network.C_ADAM_T])
        if est.solver == "adam" and t > 0:
            lr *= np.sqrt(1.0 - est.beta_2 ** t) / (1.0 - est.beta_1 ** t)
        return lr

    def __repr__(self):
        return (f"<{type(self._estimator).__name__} optimizer ({self._estimator.solver}): "
                f"learning_rate={self.learning_rate:g}>")


def _same_items(given, views):
    return (isinstance(given, (list, tuple)) and len(given) == len(views)
            and all(a is b for a, b in zip(given, views)))


def _layer_array(name, value, ndim):
    """A user's layer array as float64, checked: numbers, ndim, non-empty, finite."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not an array of numbers (got {type(value).__name__})") from None
    if a.ndim != ndim:
        shape = "(n_in, n_out)" if ndim == 2 else "(n_out,)"
        raise ValueError(f"{name} must be a {ndim}-D array {shape}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} has shape {a.shape}: every layer needs at least one unit")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinity")
    return a


def _sigmoid(Z):
    """1 / (1 + exp(-Z)) in float64, as exp(-log(1 + exp(-Z))): the exact exp of
    predict_log_proba's value, without overflow."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(Z, np.float64)))


def _float_dtype_of(X):
    """float32 or float64 when X (an array, or a frame whose columns all are) holds that
    dtype, else float64: the dtype of scikit-learn's regression outputs."""
    dtype = getattr(X, "dtype", None)
    if dtype is None and hasattr(X, "dtypes"):
        kinds = set(np.dtype(d) if isinstance(d, np.dtype) else d for d in X.dtypes)
        dtype = kinds.pop() if len(kinds) == 1 else None
    try:
        dtype = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dtype = None
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _check_label_kinds(y_true, y_pred):
    """scikit-learn's refusal (unique_labels) of string labels scored against numbers."""
    labels = set(_unique_list(y_true)) | set(_unique_list(y_pred))
    if len({isinstance(v, str) for v in labels}) > 1:
        raise ValueError("Mix of label input types (string and number); Got "
                         f"{_shown_labels(y_true)} and {_shown_labels(y_pred)}.")


def _unique_list(values):
    try:
        return np.unique(values).tolist()
    except TypeError:  # labels of mixed kinds in one array
        return list(dict.fromkeys(np.asarray(values, dtype=object).tolist()))


def _shown_labels(values):
    try:
        return str(np.unique(values))
    except TypeError:
        return str(_unique_list(values))


def _unique(values):
    try:
        return np.unique(values)
    except TypeError:
        raise ValueError("labels mix types that cannot be ordered (e.g. strings and numbers); "
                         "convert them to one type") from None


def _stratified_pick(y_idx, n_val, random_state):
    """n_val row indices, each class represented in proportion, chosen at random."""
    order = random_state.permutation(len(y_idx))
    # a stable sort by class of a random order = a random order within each class
    by_class = order[np.argsort(y_idx[order], kind="stable")]
    counts = np.bincount(y_idx)
    share = counts * n_val / len(y_idx)
    take = np.floor(share).astype(int)
    rest = n_val - take.sum()
    take[np.argsort(-(share - take), kind="stable")[:rest]] += 1
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.concatenate([by_class[s: s + t] for s, t in zip(starts, take)])


def _dtype_name(dtype):
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _rows(X, mask):
    """The rows of X (an array or a CSR matrix) where mask is True, as the engines take them."""
    if is_sparse(X):
        return X[mask]
    return np.ascontiguousarray(X[mask])


def _check_sample_weight(sample_weight, n, name="sample_weight"):
    """sample_weight as float64 (n,), checked: numbers, finite, >= 0, not all 0; None stays
    None. A scalar weighs every row alike (scikit-learn's convention)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if np.iscomplexobj(w):
        raise ValueError(f"{name} holds complex numbers; weights must be real numbers >= 0")
    if w.ndim == 0:
        w = np.full(n, w)
    try:
        w = w.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} holds values that are not numbers") from None
    if w.shape != (n,):
        raise ValueError(f"{name}.shape == {w.shape}, expected ({n},)!")
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinity; weights must be finite numbers >= 0")
    if (w < 0).any():
        raise ValueError(f"{name} has negative values (the first at row "
                         f"{int(np.flatnonzero(w < 0)[0])}: {float(w[w < 0][0])!r}); weights "
                         "must be >= 0")
    with np.errstate(over="ignore"):
        total = w.sum()
    if not total > 0:
        raise ValueError(f"{name}: every weight is zero; give some rows a weight above 0")
    if not np.isfinite(total):
        raise ValueError(f"{name} sums to more than float64 holds (the largest weight is "
                         f"{float(w.max()):.3g}); scale the weights down")
    return w


def _digest(X, y, w=None):
    """A short fingerprint of a fit's data: blake2b of X's bytes (a CSR matrix's values,
    indices and row pointers), of its encoded targets (class indices or float targets) and of
    its sample weights, in row order. Unweighted data hash as before weights existed."""
    import hashlib

    from .engine import together

    def make():
        return hashlib.blake2b(digest_size=16)
    parts = [X.data, X.indices, X.indptr] if is_sparse(X) else [X]
    group = together.current()
    if group is None:
        h = make()
    else:
        # fits pooled by run_together, on one data set: X's bytes are hashed once for them
        h = group.hashed(np.ascontiguousarray(parts[0]), make)
        parts = parts[1:]
    for a in parts + [y] + ([] if w is None else [w]):
        h.update(np.ascontiguousarray(a).view(np.uint8).ravel())
    return h.hexdigest()


# what each array of a checkpoint must be: (dtype kinds, number of dimensions)
_STATE_KINDS = {"theta": ("f", 1), "opt1": ("f", 1), "opt2": ("f", 1), "counters": ("i", 1),
                "rng": ("u", 1), "best_theta": ("f", 1), "order": ("i", 1), "values": ("U", 0)}


def _checked_state(state):
    """The checkpoint's values (a dict), after every array has been checked against the
    others: a damaged checkpoint fails here with its field named, not in compiled code."""
    for name, (kinds, ndim) in _STATE_KINDS.items():
        if name not in state:
            raise ValueError(f"the checkpoint has no {name!r}")
        a = np.asarray(state[name])
        if a.dtype.kind not in kinds or a.ndim != ndim:
            raise ValueError(f"the checkpoint's {name!r} is {a.dtype} with {a.ndim} dimension(s)")
    try:
        values = json.loads(np.asarray(state["values"]).item())
        keys = ("params", "widths", "steps", "totals", "n_iter_", "history_", "loss_curve_")
        if not isinstance(values, dict) or any(k not in values for k in keys):
            raise ValueError
    except ValueError:
        raise ValueError("the checkpoint's 'values' are damaged") from None
    theta = np.asarray(state["theta"])
    n = theta.shape[0]
    for name in ("opt1", "best_theta"):
        if np.asarray(state[name]).shape != (n,) or np.asarray(state[name]).dtype != theta.dtype:
            raise ValueError(f"the checkpoint's {name!r} does not match its weights")
    if np.asarray(state["opt2"]).shape not in ((n,), (0,)):
        raise ValueError("the checkpoint's 'opt2' does not match its weights")
    if np.asarray(state["counters"]).shape != (2,) or np.asarray(state["rng"]).shape != (1,):
        raise ValueError("the checkpoint's generator or step counters are damaged")
    if (np.asarray(state["counters"]) < 0).any():
        raise ValueError("the checkpoint's step counters are negative")
    order = np.asarray(state["order"])
    if not np.array_equal(np.sort(order), np.arange(len(order))):
        raise ValueError("the checkpoint's row order is not a permutation of its rows")
    if not all(np.isfinite(np.asarray(state[k])).all() for k in ("theta", "opt1", "opt2")):
        raise ValueError("the checkpoint's weights or optimizer state are not finite")
    totals = values["totals"]
    if not isinstance(values["steps"], int) or values["steps"] < 0 or \
            (totals is not None and len(totals) != 3):
        raise ValueError("the checkpoint's position in its epoch is damaged")
    return values


def _jsonable(v):
    """A checkpoint value as JSON keeps it: floats (inf and nan too), ints, lists, dicts."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):  # JSON keys are text: {2: 1.0} is kept as {'2': 1.0}
        return {str(_jsonable(k)): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (type, np.dtype)):
        return np.dtype(v).name
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)  # a RandomState, say: compared by its text


def _equal(a, b):
    try:
        return bool(a == b)
    except Exception:
        return False


def _choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}.")


def _number(name, value, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    ok = True
    if low is not None:
        ok &= value > low if low_open else value >= low
    if high is not None:
        ok &= value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be in {lo or '(-inf, '}{hi or 'inf)'}, got {value!r}.")

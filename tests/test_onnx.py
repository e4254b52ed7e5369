"""ONNX export (mlpfast.to_onnx, `mlpfast export`): the graph, run by onnxruntime on the raw
columns of a CSV file, gives the features, labels and probabilities (or values) mlpfast gives:
the features bit for bit, probabilities and values within 1e-5. Skipped without the onnx extra
(`pip install 'mlpfast[onnx]'`; the test extra has it)."""
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import DATASETS

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import mlpfast  # noqa: E402
from mlpfast import MLPClassifier, MLPRegressor, tabular  # noqa: E402
from mlpfast.cli.main import cli  # noqa: E402
from mlpfast.errors import MLPFastError, NotFittedError  # noqa: E402
from mlpfast.export import ExportError, MissingExtraError, to_onnx, write_onnx  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::mlpfast.errors.DataNote")]

TRUE = ("true", "t", "yes", "y", "1", "1.0")
FALSE = ("false", "f", "no", "n", "0", "0.0")


# ---- the client: what a server does without mlpfast (the README's recipe)

def graph_feeds(session, frame):
    """Feeds for the graph from a frame of raw text fields (pd.read_csv(path, dtype=str,
    keep_default_na=False)), by each input's role in the model's metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    roles = {i["name"]: i["role"] for i in json.loads(meta["mlpfast.inputs"])}
    feeds = {}
    for inp in session.get_inputs():
        text = frame[inp.name].astype(str).str.strip()
        role = roles[inp.name]
        if role == "categorical":
            v = frame[inp.name].to_numpy(object)          # the text as it is
        elif role == "boolean":
            low = text.str.lower()
            v = np.where(low.isin(TRUE), 1.0, np.where(low.isin(FALSE), 0.0, np.nan))
            v = v.astype(np.float32)
        elif role == "datetime":
            t = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            v = ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)) / 1e6
            v = v.to_numpy(np.float64)
        else:                                              # numeric: NA markers -> NaN
            v = pd.to_numeric(text, errors="coerce").to_numpy(np.float32)
        feeds[inp.name] = np.asarray(v).reshape(-1, 1)
    return feeds


def read_raw(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def session(proto, features=False):
    """An onnxruntime session; with features, the feature matrix (the first layer's input) is
    an extra output."""
    if features:
        proto = onnx.ModelProto.FromString(proto.SerializeToString())
        gemm = next(n for n in proto.graph.node if n.op_type == "Gemm")
        elem = next(i.data_type for i in proto.graph.initializer if i.name == gemm.input[1])
        proto.graph.output.append(onnx.helper.make_tensor_value_info(gemm.input[0], elem, None))
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def check_against_run(run, data, proto=None, tol=1e-5, exact=True):
    """Runs the graph on `data` (a path or a frame of text fields) and compares with run: the
    features bit for bit when every number is a float32 (exact), else to float32 rounding (a
    number such as 52.123 reaches the graph rounded to float32, mlpfast reads it in float64)."""
    proto = proto or to_onnx(run)
    onnx.checker.check_model(proto, full_check=True)
    s = session(proto, features=True)
    frame = read_raw(data) if isinstance(data, (str, os.PathLike)) else data
    out = dict(zip([o.name for o in s.get_outputs()], s.run(None, graph_feeds(s, frame))))
    X = out.pop(next(k for k in out if k not in ("label", "probabilities", "value")))
    if exact:
        np.testing.assert_array_equal(X, run.transform(frame), err_msg="features")
    else:
        np.testing.assert_allclose(X, run.transform(frame), rtol=0, atol=1e-6, err_msg="features")
    if run.task == "classification":
        P = run.predict_proba(frame)
        assert out["probabilities"].dtype == np.float64 and out["probabilities"].shape == P.shape
        np.testing.assert_allclose(out["probabilities"], P, rtol=0, atol=tol)
        want = run.predict(frame)
        assert out["label"].shape == want.shape
        assert out["label"].tolist() == want.tolist()
    else:
        want = run.predict(frame)
        assert out["value"].dtype == np.float64 and out["value"].shape == want.shape
        np.testing.assert_allclose(out["value"], want, rtol=tol, atol=tol * np.abs(want).max())
    return out


# ---- the shipped data

@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    path = tmp_path_factory.mktemp("letters") / "letters.csv"
    rows = pd.read_csv(DATASETS / "letter-recognition.csv", dtype=str).iloc[:2000]
    rows.to_csv(path, index=False)
    return path, tabular.train(str(path), target="Letter", hidden_layer_sizes=(24,), max_iter=3)


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """adult.csv has no missing values (its README: the rows with '?' were removed): 3000 rows
    with missing fields, blanks around categories and unseen values put in."""
    folder = tmp_path_factory.mktemp("adult")
    df = pd.read_csv(DATASETS / "adult.csv", dtype=str, keep_default_na=False).iloc[:3000]
    df.loc[df.index[::7], "occupation"] = ""
    df.loc[df.index[3::13], "occupation"] = "NA"
    df.loc[df.index[::11], "age"] = ""
    df.loc[df.index[5::17], "type_employer"] = " " + df["type_employer"][5::17] + "  "
    train = folder / "train.csv"
    df.to_csv(train, index=False)
    new = pd.read_csv(DATASETS / "adult.csv", dtype=str, keep_default_na=False).iloc[3000:3600]
    new = new.reset_index(drop=True)
    new.loc[0, "country"] = "Atlantis"                    # unseen: all zeros
    new.loc[1, "country"] = "\u3000United-States\u00a0"   # Unicode blanks, stripped
    new.loc[2, "education"] = "\tBachelors "
    new.loc[3, "occupation"] = "n/a"                      # a default marker: the missing level
    new.loc[4, "occupation"] = "  "                       # blank: missing
    new.loc[5, "marital"] = ""                            # missing, no missing level: zeros
    new.loc[6, "hr_per_week"] = "NaN"
    new.loc[7, "race"] = "white"                          # another case: unseen
    path = folder / "new.csv"
    new.to_csv(path, index=False)
    run = tabular.train(str(train), target="income", hidden_layer_sizes=(16,), max_iter=3)
    return train, path, run


def test_letters_numeric_multiclass(letters):
    path, run = letters
    proto = to_onnx(run)
    assert proto.opset_import[0].version == 17           # no string column: an older opset
    assert [i.name for i in proto.graph.input] == [str(k) for k in range(1, 17)]
    out = check_against_run(run, path)
    assert out["label"].dtype == object and set(out["label"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert out["probabilities"].shape == (2000, 26)


def test_adult_binary_with_missing_blanks_and_unseen(adult):
    train, new, run = adult
    assert run.estimator.out_activation_ == "logistic"   # one logistic output: [1 - p, p]
    proto = to_onnx(run)
    assert proto.opset_import[0].version == 20
    names = {i.name: i.type.tensor_type.elem_type for i in proto.graph.input}
    assert names["age"] == onnx.TensorProto.FLOAT and names["country"] == onnx.TensorProto.STRING
    assert "income" not in names
    check_against_run(run, train)
    out = check_against_run(run, new)
    assert out["probabilities"].shape == (600, 2)
    # the raw rows as the graph encodes them, against mlpfast's encoding
    X = run.transform(read_raw(new))
    j = _offset(run.schema, "country")
    assert not X[0, j:j + run.schema.columns[13].width].any()   # 'Atlantis' unseen
    assert X[1, j:j + run.schema.columns[13].width].sum() == 1


def _offset(schema, name):
    j = 0
    for c in schema.columns:
        if c.name == name:
            return j
        j += c.width
    raise KeyError(name)


# ---- a synthetic regression file: every role, missing values, markers, odd spellings

@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(3)
    n = 600
    colour = rng.choice(["red", "green", "blue", "dark blue"], n)
    code = rng.choice(["101", "102", "7.5"], n)
    num = rng.normal(50, 10, n).round(3)
    flag = rng.random(n) > 0.4
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 365, n), unit="s")
    y = num * 0.3 + (colour == "red") * 4 + (code == "7.5") * 2 - flag * 3 + rng.normal(0, 1, n)
    df = pd.DataFrame({"num": num.astype(str), "colour": colour, "code": code,
                       "flag": np.where(flag, "yes", "no"),
                       "when": when.strftime("%Y-%m-%dT%H:%M:%S"), "y": y.round(4).astype(str)})
    df.loc[::9, "num"] = ""
    df.loc[4::23, "num"] = "-999"              # --na-values: a sentinel, by value
    df.loc[::10, "colour"] = "?"               # --na-values: a text marker
    df.loc[3::12, "colour"] = "NULL"           # a default marker
    df.loc[::14, "flag"] = ""
    df.loc[::15, "when"] = ""
    df.loc[2::16, "code"] = ""
    train = folder / "train.csv"
    df.to_csv(train, index=False)
    run = tabular.train(str(train), target="y", hidden_layer_sizes=(16, 8), max_iter=4,
                        categorical=["code"], na_values=["-999", "?"], activation="tanh")
    return train, run


def test_regression_every_role(regression):
    train, run = regression
    roles = {c.name: c.role for c in run.schema.columns}
    assert roles == {"num": "numeric", "colour": "categorical", "code": "categorical",
                     "flag": "boolean", "when": "datetime"}
    assert run.schema.columns[2].numeric_levels
    proto = to_onnx(run)
    types = {i.name: i.type.tensor_type.elem_type for i in proto.graph.input}
    assert types["when"] == onnx.TensorProto.DOUBLE and types["flag"] == onnx.TensorProto.FLOAT
    assert [o.name for o in proto.graph.output] == ["value"]
    out = check_against_run(run, train, exact=False)
    assert out["value"].shape == (600,)
    assert abs(out["value"].mean() - run.schema.target_center) < 5 * run.schema.target_scale


def test_category_canonical_keys_as_mlpfast(regression):
    """Every spelling mlpfast folds into one key, the graph folds the same way."""
    _, run = regression
    texts = [
        ("red", "101"), (" red ", "101.0"), ("\tred\u00a0", " 1.01e2 "), ("red\u3000", "+101"),
        ("Red", "1.01E+2"), ("dark blue", "101abc"), (" dark blue\n", "0x65"),
        ("dark  blue", "7.50"),
        ("", ""), ("  ", " "), ("NA", "NA"), (" N/A ", "nan"), ("?", "-999"), (" ? ", "-999.0"),
        ("nan", "?"), ("None", "1e1"), ("blue", ".75e1"), ("purple", "7.5\u2003"),
        ("-999", "inf"), ("-999.00", "102."), ("blue?", "\u00a07.5"),
    ]
    frame = pd.DataFrame({"num": ["1.5"] * len(texts), "colour": [a for a, _ in texts],
                          "code": [b for _, b in texts], "flag": ["yes"] * len(texts),
                          "when": ["2024-05-01"] * len(texts)})
    proto = to_onnx(run)
    s = session(proto, features=True)
    feeds = graph_feeds(s, frame)
    X = s.run(None, feeds)[-1]
    want = run.transform(frame)
    colour, code = _offset(run.schema, "colour"), _offset(run.schema, "code")
    # a no-break space before a number: mlpfast strips it, the graph reads text (documented)
    last = len(texts) - 1
    np.testing.assert_array_equal(X[:last], want[:last])
    np.testing.assert_array_equal(X[last, :code], want[last, :code])
    assert run.schema.columns[2].levels == ["7.5", "101", "102", "<missing>"]
    assert want[last, code:code + 4].tolist() == [1, 0, 0, 0] and not X[last, code:code + 4].any()
    # spot checks of the keys themselves
    levels = run.schema.columns[1].levels
    assert levels == ["blue", "dark blue", "green", "red", "<missing>"]
    red, missing = colour + 3, colour + 4
    assert X[:4, red].tolist() == [1, 1, 1, 1] and X[4, colour:colour + 5].sum() == 0
    assert X[8:15, missing].tolist() == [1] * 7        # '', blanks, NA, N/A, ?, ' ? ', nan
    assert X[18:20, missing].tolist() == [1, 1]        # '-999' and '-999.00' by value


def test_numeric_markers_and_missing_in_float_inputs(regression):
    _, run = regression
    s = session(to_onnx(run), features=True)
    frame = pd.DataFrame({"num": ["", "-999", "NA", "50"], "colour": ["red"] * 4,
                          "code": ["101"] * 4, "flag": ["", "no", "YES", "n"],
                          "when": ["", "2024-02-29T12:00:00Z", "2024-02-29 14:00:00+02:00",
                                   "2024-03-01"]})
    X = s.run(None, graph_feeds(s, frame))[-1]
    np.testing.assert_array_equal(X, run.transform(frame))
    num = run.schema.columns[0]
    assert X[0, 0] == X[1, 0] == X[2, 0] == np.float32(num.fill)


def test_float64_model(tmp_path, regression):
    train, _ = regression
    run = tabular.train(str(train), target="y", hidden_layer_sizes=(8,), max_iter=2,
                        categorical=["code"], na_values=["-999", "?"], dtype="float64",
                        activation="leaky_relu")
    proto = to_onnx(run)
    assert onnx.TensorProto.DOUBLE in {i.data_type for i in proto.graph.initializer
                                       if i.name.startswith("_W")}
    check_against_run(run, train, proto, tol=1e-5, exact=False)


# ---- an estimator alone: one input X

@pytest.mark.parametrize("labels", ["text", "int", "binary", "bool"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "leaky_relu", "identity"])
def test_estimator_alone_classifier(labels, activation):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    k = {"text": 3, "int": 4, "binary": 2, "bool": 2}[labels]
    idx = (X[:, 0] * 2 + X[:, 1]).argsort().argsort() * k // len(X)
    y = (np.array(["cat", "dog", "emu"])[idx] if labels == "text" else idx * 10 - 5
         if labels == "int" else np.array(["no", "yes"])[idx] if labels == "binary"
         else idx.astype(bool))
    clf = MLPClassifier(hidden_layer_sizes=(7, 5), activation=activation, max_iter=5,
                        random_state=0).fit(X, y)
    proto = to_onnx(clf)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["X"]
    label, P = session(proto).run(None, {"X": X})
    np.testing.assert_allclose(P, clf.predict_proba(X), rtol=0, atol=1e-5)
    assert label.tolist() == clf.predict(X).tolist()


def test_estimator_alone_multilabel_and_regressors():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 4)).astype(np.float32)
    Y = (X[:, :3] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, Y)
    label, P = session(to_onnx(clf)).run(None, {"X": X})
    np.testing.assert_allclose(P, clf.predict_proba(X), atol=1e-5)
    assert label.shape == (150, 3) and (label == clf.predict(X)).all()
    for y, kw in ((X @ [1.0, 2, 0, -1], {}), (np.c_[X[:, 0], X[:, 1] * 3], {}),
                  (np.exp(X[:, 0]).round(), {"loss": "poisson"})):
        reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0, **kw).fit(X, y)
        proto = to_onnx(reg)
        onnx.checker.check_model(proto, full_check=True)
        (value,) = session(proto).run(None, {"X": X})
        want = reg.predict(X)
        assert value.shape == want.shape and value.dtype == want.dtype == np.float32
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5)


def test_estimator_refusals():
    with pytest.raises(NotFittedError):
        to_onnx(MLPClassifier())
    with pytest.raises(ExportError, match="takes a Run"):
        to_onnx("runs/adult")
    assert mlpfast.to_onnx is to_onnx


# ---- refusals and what is written

def test_column_named_as_an_output(tmp_path):
    df = pd.DataFrame({"label": ["a", "b", "c"] * 20, "x": np.arange(60.0),
                       "y": ["p", "q"] * 30})
    run = tabular.train(df, target="y", hidden_layer_sizes=(4,), max_iter=1)
    with pytest.raises(ExportError, match=r"'label' has the name of an output.*--drop 'label'"):
        to_onnx(run)


def test_numbers_in_category_text_with_a_decimal_comma(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "comma.csv"
    pd.DataFrame({"a": [f"{v:.1f}".replace(".", ",") for v in rng.normal(size=80)],
                  "code": rng.choice(["1,5", "2"], 80), "y": rng.choice(["u", "v"], 80)}
                 ).to_csv(path, index=False, sep=";")
    comma = tabular.CSVFormat(";", "utf-8", ",")
    run = tabular.train(str(path), target="y", categorical=["code"], csv=comma,
                        hidden_layer_sizes=(4,), max_iter=1)
    with pytest.raises(ExportError, match=r"'code' matches its levels by value.*--decimal ','"):
        to_onnx(run)
    # the same model without numbers in its category text exports
    run = tabular.train(str(path), target="y", csv=comma, hidden_layer_sizes=(4,), max_iter=1)
    to_onnx(run)


def _files(folder):
    """What a folder holds, less the run folder's lock file (training leaves it)."""
    return sorted(f for f in os.listdir(folder) if not f.endswith(".lock"))


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_export_writes_once_and_refuses_to_overwrite(tmp_path, adult):
    train, new, _ = adult
    folder = tmp_path / "run"
    r = run_cli("train", train, "--target", "income", "--out", folder, "--hidden", "8",
                "--epochs", "2", "--quiet")
    assert r.exit_code == 0, r.output
    target = tmp_path / "adult.onnx"
    r = run_cli("export", folder, "--onnx", target)
    assert r.exit_code == 0, r.output
    assert f"wrote {target}" in r.output and "label, probabilities" in r.output
    assert _files(tmp_path) == ["adult.onnx", "run"]    # no temporary file left
    check_against_run(mlpfast.load(folder), new, onnx.load(str(target)))
    before = target.read_bytes()
    r = run_cli("export", folder, "--onnx", target)
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {target} already exists; pass --force to replace it"
    os.chmod(target, 0o640)
    r = run_cli("export", folder / "model.npz", "--onnx", target, "--force")
    assert r.exit_code == 0, r.output
    assert target.read_bytes() == before                # the same model, the same bytes
    assert oct(os.stat(target).st_mode & 0o777) == "0o640"   # a replaced file keeps its mode
    for args, message in (
            ((folder, "--onnx", folder / "model.npz", "--force"), "is the model file itself"),
            ((folder, "--onnx", folder / "run.json", "--force"), "is a file of the run folder"),
            ((folder, "--onnx", tmp_path / "nowhere" / "m.onnx"), "cannot write"),
            ((tmp_path / "missing", "--onnx", tmp_path / "m.onnx"), "model file not found")):
        r = run_cli("export", *args)
        assert r.exit_code != 0
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.output
    assert _files(tmp_path) == ["adult.onnx", "run"]
    r = run_cli("export", folder)
    assert r.exit_code == 2 and "--onnx" in r.output   # usage errors, as Click's
    r = run_cli("export", folder, "--onnx", tmp_path)
    assert r.exit_code == 2 and "is a directory" in r.output


def test_missing_extra_is_one_line(tmp_path, adult, monkeypatch):
    import sys
    train, _, run = adult
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'mlpfast\[onnx\]'") as info:
        to_onnx(run)
    assert isinstance(info.value, (MLPFastError, ImportError))
    folder = tmp_path / "run"
    run.save(folder)
    r = run_cli("export", folder, "--onnx", tmp_path / "m.onnx")
    assert r.exit_code == 1
    assert r.output.strip() == ("Error: ONNX export needs the onnx package: pip install "
                                "'mlpfast[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


def test_write_onnx_and_metadata(tmp_path, regression):
    _, run = regression
    path = tmp_path / "r.onnx"
    proto = write_onnx(run, path)
    with pytest.raises(ExportError, match="already exists"):
        write_onnx(run, path)
    with pytest.raises(ExportError, match="is a folder"):
        write_onnx(run, tmp_path, force=True)
    assert write_onnx(run, path, force=True).SerializeToString() == proto.SerializeToString()
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["mlpfast.task"] == "regression" and meta["mlpfast.target"] == "y"
    inputs = json.loads(meta["mlpfast.inputs"])
    assert [(i["name"], i["role"], i["type"]) for i in inputs] == [
        ("num", "numeric", "float32"), ("colour", "categorical", "string"),
        ("code", "categorical", "string"), ("flag", "boolean", "float32"),
        ("when", "datetime", "float64")]
    assert "?" in json.loads(meta["mlpfast.na_values"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        onnx.checker.check_model(str(path), full_check=True)


def test_only_feature_columns_are_inputs():
    """The target, a --sample-weight column, --drop'ped and left-out columns are no inputs."""
    rng = np.random.default_rng(4)
    n = 150
    df = pd.DataFrame({"id": [f"row{k}" for k in range(n)], "x": rng.normal(size=n).round(2),
                       "gone": rng.normal(size=n), "w": rng.integers(1, 3, n),
                       "y": rng.choice(["a", "b", "c"], n)})
    run = tabular.train(df, target="y", drop=["gone"], sample_weight="w",
                        hidden_layer_sizes=(4,), max_iter=1)
    proto = to_onnx(run)
    assert [i.name for i in proto.graph.input] == ["x"]
    frame = df.astype(str)
    label, P = session(proto).run(None, graph_feeds(session(proto), frame))
    np.testing.assert_allclose(P, run.predict_proba(frame), atol=1e-5)


def test_export_to_a_device_writes_through_it(tmp_path, adult):
    # a rename onto /dev/null once replaced the device with a regular file (as root)
    train, _, _ = adult
    folder = tmp_path / "run"
    r = run_cli("train", train, "--target", "income", "--out", folder, "--hidden", "4",
                "--epochs", "1", "--quiet")
    assert r.exit_code == 0, r.output
    r = run_cli("export", folder, "--onnx", "/dev/null", "--force")
    assert r.exit_code == 0, r.output
    assert not os.path.isfile("/dev/null") and os.path.exists("/dev/null")

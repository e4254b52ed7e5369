"""Weights on the command line and in mlpfast.tabular: `--sample-weight COLUMN` and
`--class-weight balanced|A=2,B=1`, evaluate's weighted metrics, and what the run folder keeps.

Parsing, checking, messages, storage and evaluate need nothing of the estimator beyond an
unweighted fit. The tests under "training with weights" need the estimator's weighted API
(MLPClassifier(class_weight=...), fit(X, y, sample_weight, eval_set=(X, y, w))) and fail with a
TypeError until it is there."""
import json
import threading
import warnings

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from mlpfast import tabular
from mlpfast.cli.main import cli
from mlpfast.errors import DataError, DataNote
from mlpfast.tabular import flow
from mlpfast.tabular.learn import learn_schema
from mlpfast.tabular.reader import CSVFormat, Source
from mlpfast.tabular.schema import Schema

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
FAST = ("--hidden", 8, "--epochs", 2, "--quiet")


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)


def error_line(r, code=1):
    """The one `Error:` line of a refused command (no traceback, nothing after it)."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), r.stderr
    return last


def write(path, header, rows):
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def labelled(n=300, seed=0, weights=lambda i: [1, 0, 2.5][i % 3]):
    """Rows 'x1,x2,colour,w,y': y is 'A' when x1 > 0.3, 'B' when x1 > -0.5, else 'C'."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x1 = rng.standard_normal()
        y = "A" if x1 > 0.3 else "B" if x1 > -0.5 else "C"
        out.append(f"{x1:.4f},{rng.integers(0, 5)},{rng.choice(['r', 'g'])},{weights(i)},{y}")
    return out


def reweighed(row, weight):
    """A row of labelled() with the weight field replaced."""
    parts = row.split(",")
    return ",".join(parts[:3] + [str(weight)] + parts[4:])


@pytest.fixture
def data(tmp_path):
    return write(tmp_path / "d.csv", "x1,x2,colour,w,y", labelled())


# ---- the options

def test_help_documents_both_options_with_examples():
    r = run("train", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "--sample-weight COLUMN" in text and "Column of per-row weights" in text
    assert "--class-weight balanced|LABEL=W,..." in text and "'balanced'" in text
    assert "mlpfast train claims.csv --target fraud --sample-weight exposure" in text
    assert "--class-weight balanced" in text and "--class-weight 'A=2,B=0.5'" in text
    r = run("evaluate", "--help")
    assert "--sample-weight COLUMN" in " ".join(r.output.split())


@pytest.mark.parametrize("field,message", [
    ("", "has a missing value (an empty field) at line 5; weights are not imputed: give every "
         "row a weight (0 counts it for nothing), or remove the row"),
    ("NA", "has a missing value ('NA') at line 5; weights are not imputed: give every row a "
           "weight (0 counts it for nothing), or remove the row"),
    ("abc", "has 'abc' at line 5, which is not a number; weights must be finite numbers >= 0"),
    ('"1,5"', "has '1,5' at line 5, which is not a number; weights must be finite numbers >= 0 "
              "(or pass --decimal ',')"),
    ("-1", "has the negative weight '-1' at line 5; weights must be finite numbers >= 0"),
    ("inf", "has 'inf' at line 5, which is not a finite number; weights must be finite numbers >= 0"),
    ("-inf", "has '-inf' at line 5, which is not a finite number; weights must be finite "
             "numbers >= 0"),
])
def test_a_bad_weight_names_file_column_line_and_value(tmp_path, field, message):
    rows = labelled(10)
    rows[3] = reweighed(rows[3], field)
    path = write(tmp_path / "bad.csv", "x1,x2,colour,w,y", rows)
    out = tmp_path / "run"
    r = run("train", path, "--target", "y", "--sample-weight", "w", "--out", out, *FAST)
    assert error_line(r) == f"Error: {path}: weight column 'w' (--sample-weight) {message}"
    assert not out.exists()


def test_nan_is_not_a_weight_even_when_it_is_no_missing_marker(tmp_path):
    rows = labelled(10)
    rows[0] = reweighed(rows[0], "nan")
    path = write(tmp_path / "n.csv", "x1,x2,colour,w,y", rows)
    r = run("train", path, "--target", "y", "--sample-weight", "w", "--no-default-na", *FAST)
    assert "has 'nan' at line 2, which is not a finite number" in error_line(r)


def test_weights_read_as_numbers_are_read_decimal_comma_and_thousands(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a;w;y\n1,5;1.000,5;u\n2,5;0,25;v\n3,0;0;u\n4,5;2;v\n")
    fmt = CSVFormat(";", "utf-8", ",", ".")
    with Source(path, rereadable=True) as src:
        schema, _, notes, info = learn_schema(src, fmt, "y", weight="w")
    np.testing.assert_array_equal(info["weights"], [1000.5, 0.25, 0.0, 2.0])
    assert schema.weight == "w" and schema.names == ["a"]
    assert notes[-1] == f"{path}: weight column 'w': 1 of 4 row(s) have weight 0: kept, they count for nothing"


def test_parse_weights_takes_a_block_of_text():
    # parse_weights takes one block of a column as the reader gives it
    from mlpfast.tabular.parse import Missing
    from mlpfast.tabular.schema import parse_weights
    w = parse_weights(pa.array([" 1 ", "0", "2.5e1"]), CSVFormat(), Missing(), "f: w",
                      lambda r: f"line {r + 2}")
    np.testing.assert_array_equal(w, [1.0, 0.0, 25.0])


@pytest.mark.parametrize("args,message", [
    (("--sample-weight", "weight"), "no weight column 'weight' (--sample-weight); columns are "
                                    "['x1', 'x2', 'colour', 'w', 'y']"),
    (("--sample-weight", "y"), "--sample-weight names the target column 'y'; the weights are a "
                               "column of their own"),
    (("--sample-weight", "w", "--features", "x1,w"),
     "--features names the weight column 'w' (--sample-weight), which is no feature; leave it "
     "out of --features"),
    (("--sample-weight", "w", "--categorical", "w"),
     "--categorical names the weight column 'w' (--sample-weight), which is no feature; leave it "
     "out of --categorical"),
    (("--sample-weight", "w", "--drop", "w"),
     "--drop names the weight column 'w' (--sample-weight), which is no feature; leave it out of "
     "--drop"),
])
def test_the_weight_column_is_neither_feature_nor_target(tmp_path, data, args, message):
    r = run("train", data, "--target", "y", *args, "--out", tmp_path / "r", *FAST)
    assert error_line(r) == f"Error: {data}: {message}"


def test_zero_weights_everywhere_in_training_or_validation_are_refused(tmp_path):
    zero = write(tmp_path / "z.csv", "x1,x2,colour,w,y", labelled(40, weights=lambda i: 0))
    r = run("train", zero, "--target", "y", "--sample-weight", "w", "--val-fraction", 0, *FAST)
    assert error_line(r) == (f"Error: {zero}: weight column 'w' (--sample-weight) is 0 in every "
                             "training row; training needs rows of weight above 0")
    train = write(tmp_path / "t.csv", "x1,x2,colour,w,y", labelled(60))
    r = run("train", train, "--target", "y", "--sample-weight", "w", "--val", zero, *FAST)
    assert error_line(r) == (f"Error: {zero}: weight column 'w' is 0 in every validation row, so "
                             "the weighted validation loss is undefined; give some of them a "
                             "weight above 0")


def test_a_validation_file_carries_its_weights(tmp_path, data):
    bare = write(tmp_path / "v.csv", "x1,x2,colour,y", ["0.5,1,r,A", "-1,2,g,C"])
    r = run("train", data, "--target", "y", "--sample-weight", "w", "--val", bare, *FAST)
    assert error_line(r) == (f"Error: {bare}: no weight column 'w', which the training rows had "
                             "(--sample-weight); columns are ['x1', 'x2', 'colour', 'y']")
    bad = write(tmp_path / "vb.csv", "x1,x2,colour,w,y", ["0.5,1,r,1,A", "-1,2,g,x,C"])
    r = run("train", data, "--target", "y", "--sample-weight", "w", "--val", bad, *FAST)
    assert error_line(r) == (f"Error: {bad}: weight column 'w' has 'x' at line 3, which is not a "
                             "number; weights must be finite numbers >= 0")
    # a test file is checked before training too
    r = run("train", data, "--target", "y", "--sample-weight", "w", "--test", bad, *FAST)
    assert "weight column 'w' has 'x' at line 3" in error_line(r)


# ---- --class-weight: parsing and matching

@pytest.mark.parametrize("value,message", [
    ("Z=2", "{data}: target column 'y' has no label 'Z' (--class-weight); its labels are 'A', "
            "'B', 'C'"),
    ("A=-1", "--class-weight gives label 'A' the weight -1.0; weights must be finite numbers >= 0"),
    ("A=inf", "--class-weight gives label 'A' the weight inf; weights must be finite numbers >= 0"),
    ("A=nan", "--class-weight gives label 'A' the weight nan; weights must be finite numbers >= 0"),
    ("A=0,B=0,C=0", "{data}: --class-weight leaves every training row with weight 0; give a "
                    "class of the training rows a weight above 0"),
])
def test_class_weight_errors(tmp_path, data, value, message):
    r = run("train", data, "--target", "y", "--class-weight", value, "--out", tmp_path / "r", *FAST)
    assert error_line(r) == "Error: " + message.format(data=data)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value,message", [
    ("A=x", "the weight of 'A' is 'x', not a number"),
    ("A", "'A' is not label=weight; give 'balanced' or pairs such as 'A=2,B=1'"),
    ("=2", "'=2' is not label=weight"),
    ("A=1,A=2", "names 'A' twice"),
    (",", "give 'balanced' or pairs such as 'A=2,B=1'"),
])
def test_malformed_class_weight_is_a_usage_error(data, value, message):
    r = run("train", data, "--target", "y", "--class-weight", value, *FAST)
    assert message in error_line(r, code=2) and "--class-weight" in r.stderr


def test_class_weight_is_for_classification_only(tmp_path):
    rng = np.random.default_rng(1)
    path = write(tmp_path / "r.csv", "x,y", [f"{v:.4f},{2 * v + 0.1 * i:.4f}"
                                             for i, v in enumerate(rng.standard_normal(80))])
    r = run("train", path, "--class-weight", "balanced", *FAST)
    assert error_line(r) == (f"Error: {path}: target column 'y' is trained as regression, and "
                             "--class-weight weighs classes; leave it out (--sample-weight weighs "
                             "rows), or pass --task classification if its values are labels")
    r = run("train", path, "--task", "regression", "--class-weight", "A=2", *FAST)
    assert error_line(r) == ("Error: --class-weight weighs classes, and --task regression has "
                             "none; leave it out, or weigh rows with --sample-weight")


def test_class_labels_match_as_the_schema_matches_them(tmp_path):
    numeric = Schema([], "y", "classification", ["1", "2", "10"], [1.0, 2.0, 10.0])
    option = flow.class_weight_option({"1.0": 2, " 10 ": 0, 2: 0.5})
    assert option == {"1.0": 2.0, "10": 0.0, "2": 0.5}
    assert flow._class_weights(option, numeric, "f.csv") == {0: 2.0, 2: 0.0, 1: 0.5}
    with pytest.raises(DataError, match=r"names class '1' twice \('1', '1.0'\)"):
        flow._class_weights(flow.class_weight_option({"1": 2, "1.0": 3}), numeric, "f.csv")
    comma = Schema([], "y", "classification", ["1.5", "2"], [1.5, 2.0], csv=CSVFormat(decimal=","))
    assert flow._class_weights({"1,5": 3.0}, comma, "f.csv") == {0: 3.0}
    text = Schema([], "y", "classification", ["no", "yes"])
    assert flow._class_weights({" yes ": 4.0}, text, "f.csv") == {1: 4.0}
    with pytest.raises(DataError, match="has no label 'Yes' .*its labels are 'no', 'yes'"):
        flow._class_weights({"Yes": 4.0}, text, "f.csv")
    assert flow._class_weights("balanced", text, "f.csv") == "balanced"


@pytest.mark.parametrize("value,message", [
    ("often", "--class-weight is 'balanced' or label=weight pairs such as 'A=2,B=1', not 'often'"),
    (["A", 2], "--class-weight is 'balanced' or a dict of label: weight, not list"),
    ({"A": "2"}, "--class-weight gives label 'A' the weight '2', which is not a number"),
    ({"A": True}, "--class-weight gives label 'A' the weight True, which is not a number"),
    ({"A": -0.5}, "--class-weight gives label 'A' the weight -0.5; weights must be finite"),
])
def test_class_weight_checked_before_any_reading_in_python(tmp_path, value, message):
    with pytest.raises(DataError) as e:
        tabular.train(tmp_path / "does-not-exist.csv", class_weight=value)
    assert message in str(e.value)


def test_class_weight_from_a_config_table(tmp_path, data):
    conf = tmp_path / "c.toml"
    conf.write_text('target = "y"\nclass_weight = { A = 2, Z = 1 }\n')
    r = run("train", data, "--config", conf, *FAST)
    assert "has no label 'Z' (--class-weight)" in error_line(r)


# ---- what is stored, and runs from before weights

def test_the_schema_keeps_the_weight_column_and_older_models_load(tmp_path):
    sc = Schema([], "y", "classification", ["a", "b"], weight="w")
    from mlpfast.tabular.schema import Column
    sc.columns = [Column("x", "numeric")]
    assert Schema.from_arrays(sc.to_arrays()).weight == "w"
    # a model file written before --sample-weight: no 'weight' in its target record
    path = tmp_path / "d.csv"
    write(path, "x,y", [f"{i},{'ab'[i % 2]}" for i in range(40)])
    out = tmp_path / "old"
    assert run("train", path, "--out", out, *FAST).exit_code == 0
    with np.load(out / "model.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    target = json.loads(arrays["schema_target"].item())
    assert target.pop("weight") is None
    arrays["schema_target"] = np.array(json.dumps(target))
    np.savez(out / "model.npz", **arrays)
    old = tabular.load(out)
    assert old.schema.weight is None and len(old.predict(path)) == 40


def test_an_older_run_resumes_unweighted_and_refuses_new_weights(tmp_path):
    rng = np.random.default_rng(0)
    path = write(tmp_path / "d.csv", "x,w,y", [f"{v:.4f},1,{int(v > 0)}"
                                               for v in rng.standard_normal(400)])
    stop = threading.Event()

    def watch(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
            stop.set()
        return False
    out = tmp_path / "old"
    part = tabular.train(path, target="y", out=out, hidden_layer_sizes=(4,), max_iter=4,
                         callback=watch, stop=stop)
    assert part.interrupted is not None
    summary = json.loads((out / "run.json").read_text())
    assert summary["config"]["sample_weight"] is None and summary["config"]["class_weight"] is None
    for key in ("sample_weight", "class_weight"):  # as run.json was before these options
        del summary["config"][key]
    (out / "run.json").write_text(json.dumps(summary))
    r = run("train", "--resume", out, "--sample-weight", "w", "--class-weight", "0=2")
    assert error_line(r) == (f"Error: {out}: options differ from the run's: --sample-weight w "
                             "(the run has (none)), --class-weight 0=2 (the run has (none)); "
                             "resume with the run's options, or start a new run")
    r = run("train", "--resume", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


# ---- evaluate's weighted metrics (on a model trained without weights)

@pytest.fixture
def unweighted_model(tmp_path):
    rows = [",".join(p for k, p in enumerate(r.split(",")) if k != 3) for r in labelled(300)]
    train = write(tmp_path / "train.csv", "x1,x2,colour,y", rows)
    out = tmp_path / "model"
    assert run("train", train, "--target", "y", "--out", out, "--hidden", 8, "--epochs", 5,
               "-q").exit_code == 0
    return out


def test_evaluate_weighs_metrics_as_scikit_learn_does(tmp_path, unweighted_model):
    skm = pytest.importorskip("sklearn.metrics")
    test = write(tmp_path / "test.csv", "x1,x2,colour,w,y",
                 labelled(200, seed=5, weights=lambda i: [0, 1, 3.5, 0.25][i % 4]))
    model = tabular.load(unweighted_model)
    r = run("evaluate", unweighted_model, test, "--sample-weight", "w", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    import pandas as pd
    frame = pd.read_csv(test)
    w, y = frame.w.to_numpy(), frame.y.to_numpy()
    P = model.predict_proba(test)
    pred = np.array(["A", "B", "C"])[P.argmax(axis=1)]
    assert got["sample_weight"] == "w" and got["weight_sum"] == pytest.approx(w.sum())
    assert got["rows"] == 200
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert got["loss"] == pytest.approx(skm.log_loss(y, P, sample_weight=w, labels=["A", "B", "C"]),
                                        rel=1e-6)
    p, rc, f1, support = skm.precision_recall_fscore_support(y, pred, sample_weight=w,
                                                             labels=["A", "B", "C"],
                                                             zero_division=0)
    for k, lab in enumerate("ABC"):
        m = got["per_class"][lab]
        assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p[k], rc[k], f1[k]))
        assert m["support"] == pytest.approx(support[k])
    np.testing.assert_allclose(got["confusion_matrix"],
                               skm.confusion_matrix(y, pred, sample_weight=w, labels=list("ABC")))
    # the text report says so, and shows sums of weights
    r = run("evaluate", unweighted_model, test, "--sample-weight", "w")
    assert r.stdout.startswith(f"weighted by column 'w' (total weight {w.sum():g} in 200 rows)\n")
    assert "confusion matrix (rows: true class, columns: predicted) in sums of weights" in r.stdout
    # a model trained without weights scores a file unweighted unless asked
    r = run("evaluate", unweighted_model, test, "--json")
    plain = json.loads(r.stdout)
    assert plain["sample_weight"] is None and plain["weight_sum"] == 200
    assert plain["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert "weight" not in r.stderr


def test_a_weight_of_two_counts_a_row_twice_in_evaluate(tmp_path, unweighted_model):
    rows = labelled(50, seed=7, weights=lambda i: 1)
    doubled = write(tmp_path / "two.csv", "x1,x2,colour,w,y",
                    [reweighed(r, 2) if i < 20 else r for i, r in enumerate(rows)])
    twice = write(tmp_path / "twice.csv", "x1,x2,colour,w,y", rows + rows[:20])
    model = tabular.load(unweighted_model)
    a = model.evaluate(doubled, sample_weight="w")
    b = model.evaluate(twice)
    for key in ("loss", "accuracy"):
        assert a[key] == pytest.approx(b[key], rel=1e-9)
    np.testing.assert_allclose(a["confusion_matrix"], b["confusion_matrix"])


def test_weighted_regression_metrics(tmp_path):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200)
    path = write(tmp_path / "r.csv", "x,y", [f"{v:.4f},{3 * v + 1:.4f}" for v in x])
    out = tmp_path / "reg"
    assert run("train", path, "--out", out, *FAST).exit_code == 0
    w = rng.uniform(0, 3, 200).round(2)
    test = write(tmp_path / "t.csv", "x,wt,y", [f"{v:.4f},{k},{3 * v + 1:.4f}" for v, k in zip(x, w)])
    model = tabular.load(out)
    import pandas as pd
    pred, y = model.predict(test), pd.read_csv(test).y.to_numpy()
    got = model.evaluate(test, sample_weight="wt")
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred, sample_weight=w), rel=1e-5)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w), rel=1e-5)
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=w), rel=1e-5, abs=1e-6)
    r = run("evaluate", out, test, "--sample-weight", "wt")
    assert r.stdout.startswith("weighted by column 'wt' (total weight ")


def test_evaluate_weight_errors(tmp_path, unweighted_model):
    bare = write(tmp_path / "b.csv", "x1,x2,colour,y", ["0.5,1,r,A"])
    r = run("evaluate", unweighted_model, bare, "--sample-weight", "w")
    assert error_line(r).startswith(f"Error: {bare}: no weight column 'w'")
    zero = write(tmp_path / "z.csv", "x1,x2,colour,w,y", ["0.5,1,r,0,A", "-1,1,g,0,C"])
    r = run("evaluate", unweighted_model, zero, "--sample-weight", "w")
    assert error_line(r) == (f"Error: {zero}: weight column 'w' is 0 in every row, so weighted "
                             "metrics are undefined")
    bad = write(tmp_path / "n.csv", "x1,x2,colour,w,y", ["0.5,1,r,1,A", "-1,1,g,-3,C"])
    r = run("evaluate", unweighted_model, bad, "--sample-weight", "w")
    assert error_line(r) == (f"Error: {bad}: weight column 'w' has the negative weight '-3' at "
                             "line 3; weights must be finite numbers >= 0")


# ---- training with weights (needs the estimator's weighted API)

def test_sample_weight_end_to_end(tmp_path, data):
    out = tmp_path / "run"
    r = run("train", data, "--target", "y", "--sample-weight", "w", "--out", out,
            "--hidden", 8, "--epochs", 3)
    assert r.exit_code == 0, r.output
    assert (f"note: {data}: weight column 'w': 100 of 300 row(s) have weight 0: kept, they count "
            "for nothing") in r.stderr
    assert "weights: column 'w'\n" in r.stderr
    assert "4 features" in r.stderr  # x1, x2 and colour's two levels: w is no feature
    summary = json.loads((out / "run.json").read_text())
    assert summary["config"]["sample_weight"] == "w"
    assert summary["data"]["sample_weight"] == {"column": "w", "zero_rows": 100}
    model = tabular.load(out)
    assert model.schema.weight == "w" and "w" not in model.schema.names
    # predict ignores the weight column: the same predictions without it
    import pandas as pd
    frame = pd.read_csv(data)
    bare = tmp_path / "bare.csv"
    frame.drop(columns="w").to_csv(bare, index=False)
    with_w, without = run("predict", out, data), run("predict", out, bare)
    assert with_w.exit_code == 0 and with_w.stdout == without.stdout
    # evaluate weighs by the model's column when the file has it, and says when it has not
    r = run("evaluate", out, data, "--json")
    assert json.loads(r.stdout)["sample_weight"] == "w"
    r = run("evaluate", out, bare, "--json")
    assert json.loads(r.stdout)["sample_weight"] is None
    assert (f"note: {bare}: no weight column 'w' (the model was trained with --sample-weight w): "
            "the metrics are unweighted") in r.stderr


def test_rows_of_weight_zero_count_for_nothing(tmp_path):
    # half the rows have their labels flipped and weight 0: only the weighted fit learns the rule
    rng = np.random.default_rng(0)
    x = rng.standard_normal((800, 2))
    rows = [f"{a:.4f},{b:.4f},{k % 2},{int((a + b > 0) != (k % 2 == 0))}"
            for k, (a, b) in enumerate(x)]
    path = write(tmp_path / "flip.csv", "a,b,w,y", rows)
    clean = write(tmp_path / "clean.csv", "a,b,y", [f"{a:.4f},{b:.4f},{int(a + b > 0)}" for a, b in x])
    run_ = tabular.train(path, target="y", sample_weight="w", hidden_layer_sizes=(8,), max_iter=30,
                         learning_rate_init=0.01)
    assert run_.evaluate(clean)["accuracy"] > 0.9


def test_the_validation_loss_is_weighted(tmp_path, data):
    val = write(tmp_path / "val.csv", "x1,x2,colour,w,y",
                labelled(90, seed=9, weights=lambda i: [0, 1, 3][i % 3]))
    out = tmp_path / "run"
    r = run("train", data, "--target", "y", "--sample-weight", "w", "--val", val, "--out", out,
            "--hidden", 8, "--epochs", 3, "-q")
    assert r.exit_code == 0, r.output
    last = tabular.load(out)
    history = json.loads((out / "run.json").read_text())["final"]
    scored = last.evaluate(val)
    assert scored["sample_weight"] == "w"
    assert history["val_loss"] == pytest.approx(scored["loss"], rel=1e-4)
    assert history["val_accuracy"] == pytest.approx(scored["accuracy"], rel=1e-6)
    assert history["val_loss"] != pytest.approx(last.evaluate(val, sample_weight=False)["loss"],
                                                rel=1e-4)


def test_class_weights_reach_the_estimator_as_class_indices(tmp_path, data):
    out = tmp_path / "run"
    r = run("train", data, "--target", "y", "--class-weight", "C=3, A=0.5", "--out", out,
            "--hidden", 8, "--epochs", 2)
    assert r.exit_code == 0, r.output
    assert "weights: class weights C=3, A=0.5" in r.stderr
    assert json.loads((out / "run.json").read_text())["config"]["class_weight"] == {"C": 3.0, "A": 0.5}
    assert len(tabular.load(out).predict(data)) == 300  # the model's parameters load again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNote)
        balanced = tabular.train(data, target="y", class_weight="balanced", sample_weight="w",
                                 hidden_layer_sizes=(8,), max_iter=2)
        named = tabular.train(data, target="y", class_weight={"C": 3, "A": 0.5},
                              hidden_layer_sizes=(8,), max_iter=2)
    assert balanced.estimator.get_params()["class_weight"] == "balanced"
    assert named.estimator.get_params()["class_weight"] == {2: 3.0, 0: 0.5}


def test_a_class_of_weight_zero_is_never_learnt(tmp_path, data):
    run_ = tabular.train(data, target="y", class_weight={"B": 0}, hidden_layer_sizes=(16,),
                         max_iter=30, learning_rate_init=0.01)
    assert run_.evaluate(data)["per_class"]["B"]["recall"] < 0.1


def test_weights_from_a_dataframe(data):
    import pandas as pd
    frame = pd.read_csv(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = tabular.train(frame, target="y", sample_weight="w", class_weight={"A": 2},
                          hidden_layer_sizes=(8,), max_iter=2)
    assert r.schema.weight == "w"
    assert ("DataFrame: weight column 'w': 100 of 300 row(s) have weight 0: kept, they count for "
            "nothing") in [str(w.message) for w in caught]


def test_a_weighted_run_resumes_bit_identical(tmp_path, data):
    kw = dict(target="y", sample_weight="w", class_weight={"C": 2}, hidden_layer_sizes=(8,),
              max_iter=5)
    whole = tabular.train(data, out=tmp_path / "whole", **kw)
    stop = threading.Event()

    def watch(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
            stop.set()
        return False
    part = tabular.train(data, out=tmp_path / "part", callback=watch, stop=stop, **kw)
    assert part.interrupted is not None
    r = run("train", "--resume", tmp_path / "part", "--class-weight", "C=3")
    assert "--class-weight C=3 (the run has C=2)" in error_line(r)
    done = tabular.resume(tmp_path / "part")
    assert np.array_equal(done.estimator._theta, whole.estimator._theta)
    assert [h["val_loss"] for h in done.history] == [h["val_loss"] for h in whole.history]



def test_a_weight_too_large_for_the_sums_is_one_line(tmp_path):
    # weights of 1e300 overflow the weighted sums of the metrics (an OverflowError traceback
    # once): refused when the column is read, in every file
    path = tmp_path / "huge.csv"
    rows = ["a,b,w,y"] + [f"{i % 7},{i % 3},1e300,{i % 5}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    r = run("train", str(path), "--target", "y", "--sample-weight", "w", "--epochs", "1",
            "--out", str(tmp_path / "run"))
    assert error_line(r).endswith("has '1e300' at line 2, above 1e+150: the weighted sums of "
                                  "the loss and metrics would overflow; scale the column down")

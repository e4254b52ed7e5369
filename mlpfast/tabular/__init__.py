"""CSV files to trained models and back: one reader, a stored schema, one flow.

    from mlpfast import tabular
    run = tabular.train("houses.csv", target="price", hidden_layer_sizes=(64,), out="runs/h")
    run = mlpfast.load("runs/h")            # later, or from the CLI's run folder
    run.predict(frame_of_raw_columns)       # a DataFrame or a CSV path

Modules: reader (the one CSV reader), parse (text to values), scan (pass one: column roles),
schema (what training learnt, stored in the model; the encoder), learn (the two passes),
split (the validation split), flow (train, resume), run (Run, load), folder (the run
folder's files), output (where predictions go).
"""
from .reader import CSVFormat
from .flow import resume, train
from .run import Run, load

__all__ = ["train", "resume", "load", "Run", "CSVFormat"]

"""Where the CSV files shipped in datasets/ are, in a checkout or an install."""
from .errors import DataError


def bundled_dataset(filename):
    """Path of a CSV shipped in datasets/ (a checkout) or installed as mlpfast.datasets."""
    import pathlib
    here = pathlib.Path(__file__).resolve().parent
    candidate = here.parent / "datasets" / filename
    if candidate.exists():
        return candidate
    try:
        from importlib import resources
        path = resources.files("mlpfast.datasets") / filename
        if path.is_file():
            return pathlib.Path(str(path))
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    raise DataError(f"the bundled dataset {filename} is not installed; pass a CSV file")

"""The `mlpfast` command line (installed as mlpfast.cli)."""

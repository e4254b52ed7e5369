"""`python -m mlpfast` runs the command line."""
from mlpfast.cli.main import main

if __name__ == "__main__":
    main()

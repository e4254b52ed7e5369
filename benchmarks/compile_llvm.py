"""Seconds of LLVM work in a first float32 fit compiled in one process (no second compile
process: mlpfast.config.COMPILE_APART off), from an empty Numba cache: the module passes and
code generation that Numba runs when it finalises each library (its whole linked tree),
summed over the libraries, against the fit's whole compile.

    NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/compile_llvm.py CHECKOUT

CHECKOUT's mlpfast is imported from its folder (run each checkout in a new process, each with
an empty cache). Timing wraps Numba's internal CPUCodeLibrary methods, so it is a measurement
aid for this numba version (0.68), not something the package does.
"""
import collections
import sys
import time
import warnings


def main(checkout):
    sys.path.insert(0, checkout)
    from numba.core import codegen
    from mlpfast import compiling, config
    assert compiling.__file__.startswith(checkout), compiling.__file__
    config.COMPILE_APART = False  # older checkouts have no such switch: harmless
    warnings.simplefilter("ignore")
    seconds = collections.Counter()
    lib = codegen.CPUCodeLibrary
    for name in ("_optimize_final_module", "_finalize_final_module"):
        original = getattr(lib, name)

        def timed(self, _original=original):
            t0 = time.perf_counter()
            _original(self)
            seconds[self.name] += time.perf_counter() - t0
        setattr(lib, name, timed)
    t0 = time.perf_counter()
    compiling.WARMERS["train"][0]("float32")
    total = time.perf_counter() - t0
    print(f"{checkout}: first fit compiled in {total:.1f} s in one process; LLVM module passes "
          f"and code generation {sum(seconds.values()):.1f} s over {len(seconds)} libraries")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")

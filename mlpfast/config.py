"""Tunables of the kernels and engines, kept in one place (tests patch them small)."""

# Work (rows * cols * depth multiply-adds) above which a matmul splits its row blocks across
# threads. Below it a parallel region's start-up (a few microseconds) costs more than it saves:
# W4's 32x20x64 products stay serial, W1's 256x128x128 ones go parallel.
PARALLEL_MIN_WORK = 1 << 18

# Rows per chunk when predicting, so that activations of a large file stay in cache-sized
# buffers instead of one (n_rows x width) array per layer.
PREDICT_CHUNK_ROWS = 4096

# Minibatches per compiled call while training, when the caller wants progress reports.
# The engine sizes chunks from this and the time an epoch takes (see engine.cpu).
PROGRESS_SECONDS = 0.25

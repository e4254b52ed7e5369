"""Tunables of the kernels and engines, kept in one place (tests patch them small)."""

# Work (rows * cols * depth multiply-adds) above which a matmul splits its row blocks across
# threads. Below it a parallel region's start-up (a few microseconds) costs more than it saves:
# W4's 32x20x64 products stay serial, W1's 256x128x128 ones go parallel.
PARALLEL_MIN_WORK = 1 << 18

# Parameters above which a training step's update (sum of the chunks' gradients, L2, the
# optimizer, re-packing the weights: kernels/update.py) is split across threads.
PARALLEL_MIN_PARAMS = 1 << 14
# Weights per task of that update (whole blocks of 16 output rows of a layer): tasks of a few
# hundred weights cost more in calls and views than they save.
UPDATE_TASK_PARAMS = 4096

# A training minibatch is split into row chunks of about CHUNK_ROWS rows (at most MAX_CHUNKS
# of them; a batch of CHUNK_ROWS rows or more in at least two, so that two threads share it),
# each chunk's forward and backward on one thread, the chunks in parallel
# (kernels/network.py). The split depends on the batch size only, so results do not depend on
# the thread count. Measured on 2 cores, alternating epochs in one process: W1's batch of 256
# in two chunks ran 9 % faster per step than in four (fewer partial gradients to sum, longer
# K in the weight gradient), and W2's 128 in two 30 % faster than in one.
CHUNK_ROWS = 128
MAX_CHUNKS = 16

# Threads under load (mlpfast.threads.Governor): the CPU engine trains in slices of about
# SLICE_SECONDS and chooses all threads or fewer each time a window of at least
# LOAD_WINDOW_SECONDS closes, from the CPU time other processes took in it. /proc/stat counts in
# 10 ms ticks: a window of 0.2 s on 2 cores holds 40 of them. A slice costs one compiled call
# and a re-pack of the weights.
SLICE_SECONDS = 0.05
LOAD_WINDOW_SECONDS = 0.2
# cores of other processes' load that still count as free (see threads.threads_for)
LOAD_SLACK_CORES = 0.25

# Rows per block when predicting, so that the activations of a large file stay in cache-sized
# buffers.
PREDICT_CHUNK_ROWS = 512

# Minibatches per compiled call while training, when the caller wants progress reports.
# The engine sizes chunks from this and the time an epoch takes (see engine.cpu).
PROGRESS_SECONDS = 0.25

# together.run_together pools fits whose training sets differ but have one shape (early
# stopping's splits, say) by copying each set once into one stacked array; above this many
# bytes of copies it runs each set's fits in calls of their own instead.
TOGETHER_COPY_BYTES = 1 << 30

# A first fit compiles chunk_gradient (the network's forward and backward) in a child process
# while it compiles train_batches (the steps and the update), when Numba caches the kernels
# and two CPUs are usable (mlpfast.compiling.compile_apart): about half the first fit's
# compilation moves to the second core.
COMPILE_APART = True

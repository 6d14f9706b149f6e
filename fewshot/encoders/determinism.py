"""Bitwise-reproducible float products: MKL's strict CNR mode, switched on where byte-identity is needed.

Without it, MKL's SGEMM picks other kernels (and splits sums across threads) by matrix size and thread
count, so a row's result depends on its batch and on the threads (1e-7 differences measured). With it, and
with the encoder's batching rules (a batch holds texts of one token count, the head runs one text at a time:
:mod:`fewshot.encoders.encoder`; on an AMD EPYC strict mode alone still let padding and row counts change
the last bits), a text's vector and logits are the same whatever else is encoded with it and however many
threads run, which is what makes ``fewshot classify --engine ray`` write exactly the bytes the local engine
writes. No encode slowdown was measurable (within 5 %).

It is a process-wide setting that MKL accepts only before its first call in the process, so fewshot never
applies it at import (a user's own code keeps its settings). It is applied explicitly by
:func:`strict_blas`, which the ``fewshot`` command calls before it loads a model and every Ray actor calls
before it loads the classifier. A program that needs the same guarantee calls it first thing. An
``MKL_CBWR`` set in the environment is left alone; without MKL it is a no-op.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

MKL_CBWR_AUTO = 2
MKL_CBWR_STRICT = 0x10000


@lru_cache(maxsize=1)
def strict_blas() -> bool:
    """Put torch's MKL in strict CNR mode (``MKL_CBWR=AUTO,STRICT``) once per process; True when it is on.

    False when MKL already ran in this process (too late), on a platform without MKL, or when the
    environment's ``MKL_CBWR`` asks for another mode.
    """
    if os.environ.get("MKL_CBWR"):
        return "STRICT" in os.environ["MKL_CBWR"].upper()
    import ctypes

    import torch

    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        return int(lib.mkl_serv_cbwr_set(MKL_CBWR_AUTO | MKL_CBWR_STRICT)) == 0
    except (OSError, AttributeError):  # another platform, or torch built without MKL
        return False


def rowwise_matmul(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """``x @ weight_t``, one row of ``x`` per product (torch), so that a row's result does not depend on its batch.

    numpy's OpenBLAS picks other kernels by row count (1e-7 differences in float32, 1e-15 in float64, between
    a batch of 1, 64 or 500 rows), and so does MKL, even in strict CNR mode, for batches of a few rows (scores
    2e-6 apart between 1 and 150 rows: a file classified in chunks of 1 or 3 rows printed another last digit).
    One row per product takes the same kernel whatever the batch. The dtype is the common one of the two.
    """
    import torch

    dtype = np.result_type(x, weight_t)
    rows = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
    right = torch.from_numpy(np.ascontiguousarray(weight_t, dtype=dtype))
    if not len(rows):
        return (rows @ right).numpy()
    return torch.cat([row @ right for row in rows.split(1)]).numpy()

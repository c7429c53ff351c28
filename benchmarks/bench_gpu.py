"""The training benchmark on a CUDA device (data resident on the device); skipped without one.

python -m benchmarks.bench_gpu
"""

from __future__ import annotations

import sys


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("gpu: skipped, no CUDA device on this machine (torch.cuda.is_available() is False)")
        return
    from benchmarks import bench_train

    sys.argv = [sys.argv[0], "--device", "cuda"]
    bench_train.main()


if __name__ == "__main__":
    main()

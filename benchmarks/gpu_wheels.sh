#!/usr/bin/env bash
# Downloads the packages the GPU machine's image lacks as Python 3.12 manylinux x86_64
# wheels into .whl/ (git-ignored), for the device tool to carry there (its image has jax
# 0.11.2 with CUDA, flax, optax, orbax-checkpoint, chex, pytest and matplotlib, and no
# package registry). Only packages absent from the image, without their dependencies
# (`--no-deps`): the image's numpy, protobuf, absl-py, etils and PyYAML stay the ones
# its jax was built against. benchmarks/gpu_env.py lists what is still missing there.
#
#   bash benchmarks/gpu_wheels.sh && du -sh .whl     # then: README, "GPU suite"
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
# The ranges of requirements.txt, so the GPU runs the versions CI tests.
PACKAGES=("grain>=0.2.18,<0.3" array-record "ml_collections>=1.1,<2" "tensorboardX>=2.6,<3"
          cloudpickle portpicker)
python -m pip download --quiet --no-deps --only-binary=:all: --dest .whl \
  --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any \
  "${PACKAGES[@]}"
ls -1 .whl
du -sh .whl

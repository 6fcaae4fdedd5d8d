//! CUDA kernels (feature `cuda`): placeholder until the kernels land.

//! Sweeps of settings over many tensors, rankings and exports.

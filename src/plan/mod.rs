//! Planning across a whole model: pairing two files of one model for `compare`, and comparing
//! them tensor by tensor.

pub mod compare;
pub mod pair;

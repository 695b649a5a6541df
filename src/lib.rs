//! agdlab

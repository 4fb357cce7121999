//! Fakes for unit tests of the operations.

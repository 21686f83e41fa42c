//! Tests only: CPython's executor behaviour and procpool's failure matrix, run
//! against real worker processes. The tests live in `tests/`.

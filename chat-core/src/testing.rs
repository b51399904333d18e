//! The store conformance suite. Every [`Store`](crate::Store) backend expands
//! [`store_conformance_tests!`](crate::store_conformance_tests) in its tests and must pass
//! it unchanged.

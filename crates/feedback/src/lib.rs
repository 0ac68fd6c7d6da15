//! Answer records and user feedback, and the routing report built from them.

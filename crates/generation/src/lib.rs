//! Answer generation providers behind one streaming trait.

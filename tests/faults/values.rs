//! Inputs whose results cannot be represented are errors, never wrong values: integer ranges
//! near the type's limits, random integers outside the element type.

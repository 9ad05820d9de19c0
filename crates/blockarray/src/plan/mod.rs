//! Planning: how arrays are cut into blocks ([`chunks`]), index arithmetic for slices and takes
//! ([`index`]), and rechunk plans that keep every task under a memory bound ([`rechunk`]). No
//! tasks are built here; operations use these plans to decide which blocks feed which.

pub mod chunks;
pub mod index;
pub mod rechunk;

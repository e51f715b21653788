//! What is read back from results folders: runs side by side ([`compare`]), several generators'
//! runs as one ([`merge`]), and the fault campaign's table ([`reliability`]).

pub mod compare;
pub mod merge;
pub mod reliability;

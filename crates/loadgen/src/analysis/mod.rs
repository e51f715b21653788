//! What is read back from results folders: runs side by side ([`compare`]), several generators'
//! runs as one ([`merge`]), the fault campaign's table ([`reliability`]), and the statistics of
//! repetitions ([`stats`]).

pub mod compare;
pub mod cross_check;
pub mod merge;
pub mod reliability;
pub mod stats;

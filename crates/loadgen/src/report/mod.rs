//! Everything a run writes, from the typed [`summary::Summary`]: the results folder and its
//! files ([`files`]), the scenario table for terminals, Markdown and HTML ([`table`]),
//! `summary.md` ([`markdown`]), the charts ([`chart`]), `report.html` ([`html`]) and the WAN
//! section of zoned scenarios ([`zones`]).

pub mod chart;
pub mod figures;
pub mod files;
pub mod html;
pub mod leader;
pub mod load;
pub mod markdown;
pub mod summary;
pub mod table;
pub mod zones;

pub use files::{
    ReportDir, environment, hgrm, histograms_file, hlog, read_histograms, resources_rows,
    timeseries_rows, utc_stamp,
};
pub use markdown::markdown;
pub use table::fmt_us;

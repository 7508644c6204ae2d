//! DFS namespaces (MS-DFSC): the partition knowledge table of roots, links
//! and targets, sites, and the referrals computed from them. Sans-IO.

pub mod junction;
pub mod ordering;
pub mod placeholder;
pub mod referral;
pub mod resolve;
pub mod site;
pub mod store;
pub mod table;

pub use ordering::SplitMix64;
pub use referral::{ReferralRequest, Response, Version};
pub use resolve::{resolve, ResolveError, ResolvedReferral};
pub use site::{SiteDecodeError, SiteError, SiteMap};
pub use store::{Store, StoreError};
pub use table::{Flags, OrderingMode, Priority, PriorityClass, Table, Target, TargetState};

//! DFS namespaces (MS-DFSC): the partition knowledge table of roots, links
//! and targets, sites, and the referrals computed from them. Sans-IO.

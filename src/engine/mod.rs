//! The DFS-R replication engine (MS-FRS2 §3.3.4.6), sans-IO: identifiers,
//! version vectors, update records, the conflict rules, ancestral ordering
//! and partner sessions. Nothing here knows about Samba or sockets.

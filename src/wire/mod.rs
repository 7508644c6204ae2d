//! The DFS-R wire (MS-FRS2 §2): NDR encoding of the frstrans interface,
//! sans-IO. Transport and security live at the edges.

//! Staged files (MS-FRS2 §3.2.4.1.14): how a DFS-R partner ships a file —
//! MS-BKUP streams marshaled, framed in FRSX/XBLO blocks and compressed
//! with LZ77+Huffman (MS-XCA). Sans-IO: no Samba, no sockets.

/*
 * The meet's VFS primitives (meet_vfs.c): a share opened as a
 * connection_struct in dfsrd and open files on it. Standalone (no Samba
 * headers): the Rust side's bindings are generated from this file.
 * Statuses are NTSTATUS values.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef DFSR_MEET_VFS_H
#define DFSR_MEET_VFS_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

struct DfsrShare;
struct files_struct;

struct DfsrShare *dfsr_vfs_open_share(const char *share, uint32_t *status);
void dfsr_vfs_close_share(struct DfsrShare *s);
const char **dfsr_vfs_share_objects(const char *share);
char *dfsr_vfs_share_path(const char *share);
const char *dfsr_vfs_modules_dir(void);
const char *dfsr_vfs_builtin_modules(void);
const char *dfsr_vfs_share_option(struct DfsrShare *s, const char *name);
uint32_t dfsr_vfs_open(struct DfsrShare *s, const char *relpath,
		       uint32_t access_mask, uint32_t share_access,
		       uint32_t disposition, uint32_t create_options,
		       uint32_t attributes, const uint8_t *sd, size_t sd_len,
		       struct files_struct **pfsp);
uint32_t dfsr_vfs_write(struct files_struct *fsp, uint64_t offset,
			const uint8_t *data, size_t len);
uint32_t dfsr_vfs_set_sd(struct files_struct *fsp, const uint8_t *sd,
			 size_t len, uint32_t security_info);
uint32_t dfsr_vfs_set_attributes(struct files_struct *fsp,
				 uint32_t attributes, uint64_t create_nttime);
uint32_t dfsr_vfs_get_attributes(struct files_struct *fsp);
uint32_t dfsr_vfs_set_times(struct files_struct *fsp, uint64_t create,
			    uint64_t access, uint64_t write, uint64_t change);
uint32_t dfsr_vfs_rename(struct files_struct *fsp, const char *relpath,
			 bool replace);
uint32_t dfsr_vfs_set_sparse(struct files_struct *fsp, bool sparse);
uint32_t dfsr_vfs_set_eof(struct files_struct *fsp, uint64_t size);
uint32_t dfsr_vfs_delete_on_close(struct files_struct *fsp);
uint32_t dfsr_vfs_close(struct files_struct *fsp);
/* What the member's scan reads of an open file (dfsr_vfs_get_info). */
struct DfsrFileInfo {
	uint64_t size;
	uint64_t inode;
	/* NTTIME: creation, last access, last write, change. */
	uint64_t times[4];
	uint32_t attributes;
	bool is_dir;
};

uint32_t dfsr_vfs_read(struct files_struct *fsp, uint64_t offset,
		       uint8_t *buf, size_t len, size_t *nread);
uint32_t dfsr_vfs_get_info(struct files_struct *fsp,
			   struct DfsrFileInfo *info);
uint32_t dfsr_vfs_get_sd(struct files_struct *fsp, uint32_t security_info,
			 uint8_t **sd, size_t *len);
typedef void (*dfsr_vfs_stream_fn)(void *ctx, const char *name,
				   uint64_t size);
uint32_t dfsr_vfs_streams(struct files_struct *fsp, dfsr_vfs_stream_fn fn,
			  void *ctx);
uint32_t dfsr_vfs_break_caching(struct DfsrShare *s, const char *relpath,
				uint32_t *sent);

#endif

/*
 * The meet's calls into Samba's VFS (used by dfsrd after its init): open a share as a
 * connection_struct running that share's own `vfs objects`, and per-file
 * primitives. The install order and every decision live in Rust
 * (src/meet/install.rs); this file only marshals and calls Samba, in the
 * sequence measured in shared/notes/meet-host.md.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "smbd/smbd.h"
#include "smbd/globals.h"
#include "lib/global_contexts.h"
#include "auth.h"
#include "locking/proto.h"
#include "locking/share_mode_lock.h"
#include "librpc/gen_ndr/open_files.h"
#include "libcli/security/secdesc.h"
#include "dfsr.h"
#include "meet_vfs.h"

struct DfsrShare {
	TALLOC_CTX *mem;
	struct conn_struct_tos *c;
	bool became_user;
};

static int dfsr_share_destructor(struct DfsrShare *s)
{
	if (s->became_user) {
		unbecome_user_without_service();
	}
	return 0;
}

/* Opens SHARE for the meet; NULL with *status set on failure. */
struct DfsrShare *dfsr_vfs_open_share(const char *share, uint32_t *status)
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	const struct auth_session_info *session = get_session_info_system();
	struct DfsrShare *s = NULL;
	char *path = NULL;
	NTSTATUS st;
	int snum;

	snum = lp_servicenumber(share);
	if (snum < 0) {
		*status = NT_STATUS_V(NT_STATUS_BAD_NETWORK_NAME);
		return NULL;
	}
	/* A stackframe: Samba's *_tos calls allocate on talloc_tos(). */
	s = talloc_zero(talloc_stackframe(), struct DfsrShare);
	if (s == NULL) {
		*status = NT_STATUS_V(NT_STATUS_NO_MEMORY);
		return NULL;
	}
	s->mem = talloc_parent(s);
	path = lp_path(s, lp_sub, snum);
	st = create_conn_struct_tos_cwd(global_messaging_context(), snum, path,
					session, &s->c);
	if (!NT_STATUS_IS_OK(st)) {
		*status = NT_STATUS_V(st);
		TALLOC_FREE(s->mem);
		return NULL;
	}
	/* The meet writes where clients may only read. */
	s->c->conn->read_only = false;
	file_init(s->c->conn->sconn);
	s->c->conn->sconn->notify_ctx = notify_init(
		s->c->conn->sconn, global_messaging_context(),
		s->c->conn->sconn, NULL);
	if (!become_user_without_service_by_session(s->c->conn, session)) {
		*status = NT_STATUS_V(NT_STATUS_ACCESS_DENIED);
		TALLOC_FREE(s->mem);
		return NULL;
	}
	s->became_user = true;
	talloc_set_destructor(s, dfsr_share_destructor);
	*status = 0;
	return s;
}

/* SHARE's `vfs objects` (NULL-terminated, owned by loadparm until
 * smb.conf is reloaded); NULL for an unknown share. */
const char **dfsr_vfs_share_objects(const char *share)
{
	int snum = lp_servicenumber(share);
	return snum < 0 ? NULL : lp_vfs_objects(snum);
}

/* SHARE's path as smbd substitutes it, malloc'ed (the caller frees it);
 * NULL for an unknown share. */
char *dfsr_vfs_share_path(const char *share)
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	TALLOC_CTX *frame = talloc_stackframe();
	char *path = NULL;
	char *copy = NULL;
	int snum = lp_servicenumber(share);

	if (snum >= 0) {
		path = lp_path(frame, lp_sub, snum);
		copy = path == NULL ? NULL : strdup(path);
	}
	TALLOC_FREE(frame);
	return copy;
}

/* Where smb_load_module("vfs", NAME) looks: MODULESDIR/vfs/NAME.so. */
const char *dfsr_vfs_modules_dir(void)
{
	return get_dyn_MODULESDIR();
}

/* The VFS modules built into libsmbd-base, as the text of this tree's
 * static_init_vfs macro ("{ vfs_default_init((NULL)); ... }"): the list
 * vfs_init_custom registers before it loads any module from disk. */
#define DFSR_STR(x) #x
#define DFSR_XSTR(x) DFSR_STR(x)
const char *dfsr_vfs_builtin_modules(void)
{
	return DFSR_XSTR(static_init_vfs(NULL));
}

/* The share's dfsr:NAME (or [global]'s), NULL when unset. Owned by
 * loadparm: valid until smb.conf is reloaded. */
const char *dfsr_vfs_share_option(struct DfsrShare *s, const char *name)
{
	return lp_parm_const_string(SNUM(s->c->conn), "dfsr", name, NULL);
}

void dfsr_vfs_close_share(struct DfsrShare *s)
{
	if (s != NULL) {
		TALLOC_FREE(s->mem);
	}
}

/* SMB_VFS_CREATE_FILE as an internal open (create_file_default). */
/* SD (self-relative, SD_LEN bytes; none when 0) is what a client's
 * create would carry: smbd stores it on a file it creates instead of the
 * inherited one (create_file_unixpath). */
uint32_t dfsr_vfs_open(struct DfsrShare *s, const char *relpath,
		       uint32_t access_mask, uint32_t share_access,
		       uint32_t disposition, uint32_t create_options,
		       uint32_t attributes, const uint8_t *sd, size_t sd_len,
		       struct files_struct **pfsp)
{
	connection_struct *conn = s->c->conn;
	TALLOC_CTX *frame = talloc_stackframe();
	struct files_struct *dirfsp = NULL;
	struct smb_filename *fname = NULL;
	struct security_descriptor *psd = NULL;
	NTSTATUS st = NT_STATUS_OK;

	*pfsp = NULL;
	if (sd_len > 0) {
		st = unmarshall_sec_desc(frame, discard_const_p(uint8_t, sd),
					 sd_len, &psd);
	}
	if (NT_STATUS_IS_OK(st)) {
		st = filename_convert_dirfsp(frame, conn, relpath,
				filename_create_ucf_flags(NULL, disposition),
				0, &dirfsp, &fname);
	}
	if (NT_STATUS_IS_OK(st)) {
		st = SMB_VFS_CREATE_FILE(conn, NULL, dirfsp, fname,
					 access_mask, share_access, disposition,
					 create_options, attributes,
					 INTERNAL_OPEN_ONLY, NULL, 0, 0, psd,
					 NULL, pfsp, NULL, NULL, NULL);
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(st);
}

uint32_t dfsr_vfs_write(struct files_struct *fsp, uint64_t offset,
			const uint8_t *data, size_t len)
{
	ssize_t n = vfs_pwrite_data(NULL, fsp, (const char *)data, len,
				    (off_t)offset);
	if (n < 0 || (size_t)n != len) {
		int err = (n < 0) ? errno : ENOSPC;
		DBG_ERR("writing %s at %" PRIu64 ": wrote %zd of %zu: %s\n",
			fsp_str_dbg(fsp), offset, n, len, strerror(err));
		return NT_STATUS_V(map_nt_error_from_unix(err));
	}
	return 0;
}

/* A self-relative SD, as set_sd_blob does for an SMB client. */
uint32_t dfsr_vfs_set_sd(struct files_struct *fsp, const uint8_t *sd,
			 size_t len, uint32_t security_info)
{
	return NT_STATUS_V(set_sd_blob(metadata_fsp(fsp),
				       discard_const_p(uint8_t, sd),
				       (uint32_t)len, security_info));
}

uint32_t dfsr_vfs_set_attributes(struct files_struct *fsp,
				 uint32_t attributes, uint64_t create_nttime)
{
	struct files_struct *mfsp = metadata_fsp(fsp);

	/* user.DOSATTRIB carries the create time from st_ex_btime. */
	mfsp->fsp_name->st.st_ex_btime = nt_time_to_full_timespec(create_nttime);
	return NT_STATUS_V(SMB_VFS_FSET_DOS_ATTRIBUTES(fsp->conn, mfsp,
						       attributes));
}

uint32_t dfsr_vfs_get_attributes(struct files_struct *fsp)
{
	return fdos_mode(metadata_fsp(fsp));
}

uint32_t dfsr_vfs_set_times(struct files_struct *fsp, uint64_t create,
			    uint64_t access, uint64_t write, uint64_t change)
{
	struct smb_file_time ft;
	int ret;

	init_smb_file_time(&ft);
	ft.create_time = nt_time_to_full_timespec(create);
	ft.atime = nt_time_to_full_timespec(access);
	ft.mtime = nt_time_to_full_timespec(write);
	ft.ctime = nt_time_to_full_timespec(change);
	ret = SMB_VFS_FNTIMES(metadata_fsp(fsp), &ft);
	return ret == 0 ? 0 : NT_STATUS_V(map_nt_error_from_unix(errno));
}

/* Renames the open FSP (opened with DELETE access) to RELPATH. */
uint32_t dfsr_vfs_rename(struct files_struct *fsp, const char *relpath,
			 bool replace)
{
	connection_struct *conn = fsp->conn;
	TALLOC_CTX *frame = talloc_stackframe();
	struct files_struct *dirfsp = NULL;
	struct smb_filename *dst = NULL;
	const char *lcomp = NULL;
	NTSTATUS st;

	st = filename_convert_dirfsp(frame, conn, relpath,
				     filename_create_ucf_flags(NULL, FILE_OVERWRITE_IF),
				     0, &dirfsp, &dst);
	if (NT_STATUS_IS_OK(st)) {
		lcomp = strrchr_m(relpath, '/');
		lcomp = (lcomp != NULL) ? lcomp + 1 : relpath;
		st = rename_internals_fsp(conn, fsp, dirfsp, dst, lcomp,
					  FILE_ATTRIBUTE_NORMAL, replace);
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(st);
}

/* FSCTL_SET_SPARSE's work: smbd keeps the sparse attribute only when
 * set this way (dosmode.c, file_set_sparse). */
uint32_t dfsr_vfs_set_sparse(struct files_struct *fsp, bool sparse)
{
	return NT_STATUS_V(file_set_sparse(fsp->conn, fsp, sparse));
}

/* Sets the end of file (a sparse file's trailing hole). */
uint32_t dfsr_vfs_set_eof(struct files_struct *fsp, uint64_t size)
{
	if (vfs_set_filelen(fsp, (off_t)size) != 0) {
		return NT_STATUS_V(map_nt_error_from_unix(errno));
	}
	return 0;
}

/* Marks FSP to be deleted when it is closed. */
uint32_t dfsr_vfs_delete_on_close(struct files_struct *fsp)
{
	const struct auth_session_info *si = fsp->conn->session_info;

	if (!set_delete_on_close(fsp, true, si->security_token,
				 si->unix_token)) {
		return NT_STATUS_V(NT_STATUS_ACCESS_DENIED);
	}
	return 0;
}

uint32_t dfsr_vfs_close(struct files_struct *fsp)
{
	return NT_STATUS_V(close_file_free(NULL, &fsp, NORMAL_CLOSE));
}

struct dfsr_break_state {
	struct file_id id;
	uint32_t sent;
};

static bool dfsr_break_fn(struct share_mode_entry *e, bool *modified,
			  void *private_data)
{
	struct dfsr_break_state *st = private_data;

	if (e->op_type == NO_OPLOCK || share_entry_stale_pid(e)) {
		return false;
	}
	if (NT_STATUS_IS_OK(send_break_message(global_messaging_context(),
					       &st->id, e, SMB2_LEASE_NONE))) {
		st->sent += 1;
	}
	return false;
}

/*
 * Asks every client caching RELPATH under an oplock or a lease to give it
 * up (break to none), as smbd does for a client open that meets a
 * sharing violation; internal opens never do (open.c,
 * handle_share_mode_lease). *SENT: how many were asked.
 */
uint32_t dfsr_vfs_break_caching(struct DfsrShare *s, const char *relpath,
				uint32_t *sent)
{
	connection_struct *conn = s->c->conn;
	TALLOC_CTX *frame = talloc_stackframe();
	struct files_struct *dirfsp = NULL;
	struct smb_filename *fname = NULL;
	struct share_mode_lock *lck = NULL;
	struct dfsr_break_state st = { .sent = 0 };
	NTSTATUS status;

	*sent = 0;
	status = filename_convert_dirfsp(frame, conn, relpath, 0, 0, &dirfsp,
					 &fname);
	if (NT_STATUS_IS_OK(status) && !VALID_STAT(fname->st)) {
		status = NT_STATUS_OBJECT_NAME_NOT_FOUND;
	}
	if (NT_STATUS_IS_OK(status)) {
		st.id = vfs_file_id_from_sbuf(conn, &fname->st);
		lck = get_existing_share_mode_lock(frame, st.id);
		if (lck != NULL) {
			share_mode_forall_entries(lck, dfsr_break_fn, &st);
		}
		*sent = st.sent;
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

/* Reads up to LEN bytes at OFFSET; *NREAD 0 at the end of the file. */
uint32_t dfsr_vfs_read(struct files_struct *fsp, uint64_t offset,
		       uint8_t *buf, size_t len, size_t *nread)
{
	ssize_t n = SMB_VFS_PREAD(fsp, buf, len, (off_t)offset);

	*nread = 0;
	if (n < 0) {
		return NT_STATUS_V(map_nt_error_from_unix(errno));
	}
	*nread = (size_t)n;
	return 0;
}

/* Size, inode, the four times and the DOS attributes as smbd reports them
 * to a client (fresh stat, fdos_mode). */
uint32_t dfsr_vfs_get_info(struct files_struct *fsp,
			   struct DfsrFileInfo *info)
{
	struct files_struct *mfsp = metadata_fsp(fsp);
	const SMB_STRUCT_STAT *st = NULL;
	NTSTATUS status = vfs_stat_fsp(fsp);

	if (!NT_STATUS_IS_OK(status)) {
		return NT_STATUS_V(status);
	}
	st = &fsp->fsp_name->st;
	info->size = (uint64_t)st->st_ex_size;
	info->inode = (uint64_t)st->st_ex_ino;
	info->is_dir = S_ISDIR(st->st_ex_mode);
	info->attributes = fdos_mode(mfsp);
	/* fdos_mode read user.DOSATTRIB, which carries the create time. */
	st = &mfsp->fsp_name->st;
	info->times[0] = full_timespec_to_nt_time(&st->st_ex_btime);
	info->times[1] = full_timespec_to_nt_time(&st->st_ex_atime);
	info->times[2] = full_timespec_to_nt_time(&st->st_ex_mtime);
	info->times[3] = full_timespec_to_nt_time(&st->st_ex_ctime);
	return 0;
}

/* The file's security descriptor as a client reads it (FGET_NT_ACL),
 * self-relative, malloc'ed into *SD (the caller frees it). */
uint32_t dfsr_vfs_get_sd(struct files_struct *fsp, uint32_t security_info,
			 uint8_t **sd, size_t *len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct security_descriptor *psd = NULL;
	uint8_t *blob = NULL;
	size_t n = 0;
	NTSTATUS status;

	*sd = NULL;
	*len = 0;
	status = SMB_VFS_FGET_NT_ACL(metadata_fsp(fsp), security_info, frame,
				     &psd);
	if (NT_STATUS_IS_OK(status)) {
		status = marshall_sec_desc(frame, psd, &blob, &n);
	}
	if (NT_STATUS_IS_OK(status)) {
		*sd = malloc(n);
		if (*sd == NULL) {
			status = NT_STATUS_NO_MEMORY;
		} else {
			memcpy(*sd, blob, n);
			*len = n;
		}
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

/* Calls FN for each named stream ("::$DATA", the main data, is left out)
 * with its bare name and size. */
uint32_t dfsr_vfs_streams(struct files_struct *fsp, dfsr_vfs_stream_fn fn,
			  void *ctx)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct stream_struct *streams = NULL;
	unsigned int num = 0;
	unsigned int i;
	NTSTATUS status;

	status = vfs_fstreaminfo(metadata_fsp(fsp), frame, &num, &streams);
	if (NT_STATUS_IS_OK(status)) {
		for (i = 0; i < num; i++) {
			const char *name = streams[i].name;
			char *bare = NULL;
			char *end = NULL;

			if (name == NULL || strcasecmp_m(name, "::$DATA") == 0) {
				continue;
			}
			bare = talloc_strdup(frame, name[0] == ':' ? name + 1 : name);
			if (bare == NULL) {
				status = NT_STATUS_NO_MEMORY;
				break;
			}
			end = strrchr_m(bare, ':');
			if (end != NULL && strcasecmp_m(end, ":$DATA") == 0) {
				*end = '\0';
			}
			fn(ctx, bare, streams[i].size);
		}
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

/*
 * vfs_dfsr: the samba-dfsr VFS module, C side.
 *
 * A thin shim: it marshals smbd's arguments and calls the Rust side
 * (include/dfsr.h). Every operation it does not list below goes to the next
 * module unchanged.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include <dlfcn.h>
#include "smbd/smbd.h"
#include "lib/param/loadparm.h"
#include "smbd/globals.h"
#include "lib/param/param_global.h"
#include "lib/param/s3_param.h"
#include "librpc/gen_ndr/ndr_dfsblobs.h"
#include "lib/tsocket/tsocket.h"
#include "msdfs.h"
#include "dfsr.h"

static int vfs_dfsr_debug_class = DBGC_VFS;
#undef DBGC_CLASS
#define DBGC_CLASS vfs_dfsr_debug_class

/* A parmlist as an array of (key, value) for the Rust side. */
static struct DfsrParam *dfsr_params(TALLOC_CTX *mem_ctx,
				     const struct parmlist_entry *list,
				     size_t *n)
{
	const struct parmlist_entry *p;
	struct DfsrParam *out;
	size_t i = 0;

	*n = 0;
	for (p = list; p != NULL; p = p->next) {
		i++;
	}
	out = talloc_zero_array(mem_ctx, struct DfsrParam, i);
	if (out == NULL) {
		return NULL;
	}
	for (p = list; p != NULL && *n < i; p = p->next) {
		out[*n].key = p->key;
		out[*n].value = p->value;
		*n += 1;
	}
	return out;
}

static void dfsr_free_connection(void **data)
{
	dfsr_disconnect((struct DfsrConnection *)*data);
	*data = NULL;
}

static int vfs_dfsr_connect(vfs_handle_struct *handle, const char *service,
			    const char *user)
{
	TALLOC_CTX *frame = NULL;
	struct loadparm_service *svc = NULL;
	const struct loadparm_s3_helpers *helpers = NULL;
	struct DfsrParam *gparams = NULL, *sparams = NULL;
	size_t n_global = 0, n_share = 0;
	struct DfsrConnection *conn = NULL;
	int ret;

	ret = SMB_VFS_NEXT_CONNECT(handle, service, user);
	if (ret < 0) {
		return ret;
	}

	frame = talloc_stackframe();
	helpers = loadparm_s3_helpers();
	svc = lp_servicebynum(SNUM(handle->conn));
	gparams = dfsr_params(frame, helpers->globals->param_opt, &n_global);
	if (svc != NULL) {
		sparams = dfsr_params(frame, svc->param_opt, &n_share);
	}
	/* In dfsrd (the meet) or in smbd (a client)? See dfsrd.c. */
	conn = dfsr_connect(service, handle->conn->connectpath, user,
			    gparams, n_global, sparams, n_share,
			    dlsym(RTLD_DEFAULT, "dfsrd_meet_process") != NULL);
	TALLOC_FREE(frame);

	/* The Rust side frees its state when smbd frees the handle. */
	SMB_VFS_HANDLE_SET_DATA(handle, conn, dfsr_free_connection,
				struct DfsrConnection, return -1);
	return 0;
}

static void vfs_dfsr_disconnect(vfs_handle_struct *handle)
{
	/* Hands the connection back to Rust (dfsr_free_connection). */
	SMB_VFS_HANDLE_FREE_DATA(handle);
	SMB_VFS_NEXT_DISCONNECT(handle);
}

/*
 * Referrals for our namespaces (MS-DFSC): the Rust side computes the
 * response blob from the namespace table in the state directory; Samba's
 * own parser turns it into the struct smbd marshals. Paths that are not
 * ours go to the next module (domain, DC and sysvol referrals).
 */
static NTSTATUS vfs_dfsr_get_dfs_referrals(struct vfs_handle_struct *handle,
					   struct dfs_GetDFSReferral *r)
{
	TALLOC_CTX *frame = talloc_stackframe();
	const char *client = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	uint32_t st;
	struct dfs_referral_resp *resp = NULL;
	enum ndr_err_code ndr_err;
	DATA_BLOB blob;

	client = tsocket_address_inet_addr_string(
		handle->conn->sconn->remote_address, frame);
	st = dfsr_get_referral(lp_state_directory(), r->in.req.servername,
			       r->in.req.max_referral_level, client, &bytes,
			       &len);
	TALLOC_FREE(frame);
	if (st == NT_STATUS_V(NT_STATUS_NOT_FOUND)) {
		return SMB_VFS_NEXT_GET_DFS_REFERRALS(handle, r);
	}
	if (st != 0) {
		return NT_STATUS(st);
	}
	resp = talloc_zero(r, struct dfs_referral_resp);
	if (resp == NULL) {
		dfsr_free_bytes(bytes, len);
		return NT_STATUS_NO_MEMORY;
	}
	blob = data_blob_const(bytes, len);
	ndr_err = ndr_pull_struct_blob(&blob, resp, resp,
			(ndr_pull_flags_fn_t)ndr_pull_dfs_referral_resp);
	dfsr_free_bytes(bytes, len);
	if (!NDR_ERR_CODE_IS_SUCCESS(ndr_err)) {
		DBG_ERR("our referral for %s does not parse: %s\n",
			r->in.req.servername, ndr_errstr(ndr_err));
		return NT_STATUS_INTERNAL_ERROR;
	}
	r->out.resp = resp;
	return NT_STATUS_OK;
}

/* The share-relative, '/'-separated path of NAME under DIRFSP (smbd's
 * NetDfs code passes absolute paths under the share's connectpath). */
static char *dfsr_share_relative(TALLOC_CTX *mem, connection_struct *conn,
				 const struct files_struct *dirfsp,
				 const struct smb_filename *name)
{
	const char *dir = NULL;
	size_t root = strlen(conn->connectpath);
	char *full = NULL;

	/* Stream opens come with no directory handle. */
	if (dirfsp != NULL && dirfsp->fsp_name != NULL) {
		dir = dirfsp->fsp_name->base_name;
	}

	if (dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0) {
		full = talloc_strdup(mem, name->base_name);
	} else {
		full = talloc_asprintf(mem, "%s/%s", dir, name->base_name);
	}
	if (full != NULL && strncmp(full, conn->connectpath, root) == 0 &&
	    full[root] == '/') {
		return full + root + 1;
	}
	return full;
}

/*
 * A link's targets come from our table (with the link's TTL) when it is
 * one of ours; smbd's own reading of the msdfs: placeholder (NEXT) still
 * runs first: it fills smb_fname->st and says whether this is a link.
 */
static NTSTATUS vfs_dfsr_read_dfs_pathat(struct vfs_handle_struct *handle,
					 TALLOC_CTX *mem_ctx,
					 struct files_struct *dirfsp,
					 struct smb_filename *smb_fname,
					 struct referral **ppreflist,
					 size_t *preferral_count)
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	TALLOC_CTX *frame = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0, count = 0, i;
	uint32_t ttl = 0;
	struct referral *list = NULL;
	char *text = NULL;
	NTSTATUS status;

	status = SMB_VFS_NEXT_READ_DFS_PATHAT(handle, mem_ctx, dirfsp,
					      smb_fname, ppreflist,
					      preferral_count);
	if (!NT_STATUS_IS_OK(status) || ppreflist == NULL ||
	    preferral_count == NULL || !lp_msdfs_root(SNUM(handle->conn))) {
		return status;
	}
	frame = talloc_stackframe();
	if (dfsr_dfs_link_text(lp_state_directory(),
			       lp_servicename(frame, lp_sub, SNUM(handle->conn)),
			       dfsr_share_relative(frame, handle->conn, dirfsp,
						   smb_fname),
			       &bytes, &len, &ttl) != 0) {
		TALLOC_FREE(frame);
		return status;
	}
	text = talloc_strndup(frame, (const char *)bytes, len);
	dfsr_free_bytes(bytes, len);
	if (text == NULL ||
	    !parse_msdfs_symlink(mem_ctx, false, text, &list, &count)) {
		TALLOC_FREE(frame);
		return NT_STATUS_NO_MEMORY;
	}
	for (i = 0; i < count; i++) {
		list[i].ttl = ttl;
	}
	TALLOC_FREE(*ppreflist);
	*ppreflist = list;
	*preferral_count = count;
	TALLOC_FREE(frame);
	return NT_STATUS_OK;
}

/*
 * NetDfsAdd/NetDfsRemove of a target (rpcd_classic) end here: NEXT writes
 * the placeholder, then the new target list goes into our table
 * (privileged: the table lives in the state directory). An existing
 * placeholder is replaced here, through NEXT: smbd would unlink it through
 * our unlinkat, which takes a deleted link out of the table and so would
 * lose its targets' state, priority and TTL.
 */
static NTSTATUS vfs_dfsr_create_dfs_pathat(struct vfs_handle_struct *handle,
					   struct files_struct *dirfsp,
					   const struct smb_filename *smb_fname,
					   const struct referral *reflist,
					   size_t referral_count)
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	TALLOC_CTX *frame = NULL;
	const char **targets = NULL;
	size_t i;
	uint32_t st;

	NTSTATUS status;

	status = SMB_VFS_NEXT_CREATE_DFS_PATHAT(handle, dirfsp, smb_fname,
						reflist, referral_count);
	if (!lp_msdfs_root(SNUM(handle->conn))) {
		return status;
	}
	if (NT_STATUS_EQUAL(status, NT_STATUS_OBJECT_NAME_COLLISION)) {
		if (SMB_VFS_NEXT_UNLINKAT(handle, dirfsp, smb_fname, 0) != 0) {
			return map_nt_error_from_unix(errno);
		}
		status = SMB_VFS_NEXT_CREATE_DFS_PATHAT(handle, dirfsp,
							smb_fname, reflist,
							referral_count);
	}
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	frame = talloc_stackframe();
	targets = talloc_zero_array(frame, const char *, referral_count + 1);
	if (targets == NULL) {
		TALLOC_FREE(frame);
		return NT_STATUS_NO_MEMORY;
	}
	for (i = 0; i < referral_count; i++) {
		targets[i] = reflist[i].alternate_path;
	}
	become_root();
	st = dfsr_dfs_link_set(lp_state_directory(),
			       lp_servicename(frame, lp_sub, SNUM(handle->conn)),
			       dfsr_share_relative(frame, handle->conn, dirfsp,
						   smb_fname),
			       targets, referral_count);
	unbecome_root();
	TALLOC_FREE(frame);
	return NT_STATUS(st);
}

/*
 * Change capture: after a client's change succeeded, the Rust side
 * records it in the journal when the share is a replicated folder here
 * (src/store/journal.rs), so dfsrd's member stages it at once instead of
 * at its next scan. The meet's own connections record nothing.
 */
static void dfsr_changed(vfs_handle_struct *handle, char kind,
			 const char *path, const char *to)
{
	struct DfsrConnection *c = NULL;

	SMB_VFS_HANDLE_GET_DATA(handle, c, struct DfsrConnection, return);
	if (!dfsr_connection_captures(c)) {
		return;
	}
	/* The journal lives in the state directory, root's. */
	become_root();
	dfsr_record_change(c, lp_state_directory(), kind, path, to);
	unbecome_root();
}

/* A change named by a directory handle and a name. */
static void dfsr_changed_at(vfs_handle_struct *handle, char kind,
			    const struct files_struct *dirfsp,
			    const struct smb_filename *name)
{
	TALLOC_CTX *frame = talloc_stackframe();

	dfsr_changed(handle, kind,
		     dfsr_share_relative(frame, handle->conn, dirfsp, name),
		     NULL);
	TALLOC_FREE(frame);
}

/* An open file's share-relative path (smbd names it from the share's
 * root; an absolute name is cut down to that). */
static const char *dfsr_fsp_relative(connection_struct *conn,
				     const struct files_struct *fsp)
{
	const char *name = fsp->fsp_name->base_name;
	size_t root = strlen(conn->connectpath);

	if (strncmp(name, conn->connectpath, root) == 0 && name[root] == '/') {
		return name + root + 1;
	}
	return name;
}

/* A change through an open handle (ACL, attributes, times): recorded
 * now, and again when the handle closes, when the file can be read. */
static void dfsr_changed_fsp(vfs_handle_struct *handle,
			     struct files_struct *fsp, char kind)
{
	dfsr_changed(handle, kind, dfsr_fsp_relative(handle->conn, fsp), NULL);
	if (VFS_FETCH_FSP_EXTENSION(handle, fsp) == NULL) {
		(void)VFS_ADD_FSP_EXTENSION(handle, fsp, bool, NULL);
	}
}

static int vfs_dfsr_openat(struct vfs_handle_struct *handle,
			   const struct files_struct *dirfsp,
			   const struct smb_filename *smb_fname,
			   struct files_struct *fsp,
			   const struct vfs_open_how *how)
{
	int fd = SMB_VFS_NEXT_OPENAT(handle, dirfsp, smb_fname, fsp, how);

	/* The handle's own name is the whole share-relative one (a stream's
	 * names its file), whichever directory handle it was opened at. */
	if (fd != -1 && (how->flags & O_CREAT)) {
		dfsr_changed(handle, 'N', dfsr_fsp_relative(handle->conn, fsp),
			     NULL);
	}
	return fd;
}

/* A handle that wrote, truncated or set the size (smbd's
 * mark_file_modified), its data or a stream's, or changed metadata, is
 * recorded at close. */
static int vfs_dfsr_close(struct vfs_handle_struct *handle,
			  struct files_struct *fsp)
{
	bool written = fsp->fsp_flags.modified ||
		VFS_FETCH_FSP_EXTENSION(handle, fsp) != NULL;
	int ret = SMB_VFS_NEXT_CLOSE(handle, fsp);

	if (ret == 0 && written) {
		dfsr_changed(handle, 'W', dfsr_fsp_relative(handle->conn, fsp),
			     NULL);
	}
	return ret;
}

static int vfs_dfsr_mkdirat(struct vfs_handle_struct *handle,
			    struct files_struct *dirfsp,
			    const struct smb_filename *smb_fname,
			    mode_t mode)
{
	int ret = SMB_VFS_NEXT_MKDIRAT(handle, dirfsp, smb_fname, mode);

	if (ret == 0) {
		dfsr_changed_at(handle, 'M', dirfsp, smb_fname);
	}
	return ret;
}

static int vfs_dfsr_renameat(struct vfs_handle_struct *handle,
			     struct files_struct *srcfsp,
			     const struct smb_filename *src,
			     struct files_struct *dstfsp,
			     const struct smb_filename *dst)
{
	int ret = SMB_VFS_NEXT_RENAMEAT(handle, srcfsp, src, dstfsp, dst);

	if (ret == 0) {
		TALLOC_CTX *frame = talloc_stackframe();

		dfsr_changed(handle, 'R',
			     dfsr_share_relative(frame, handle->conn, srcfsp,
						 src),
			     dfsr_share_relative(frame, handle->conn, dstfsp,
						 dst));
		TALLOC_FREE(frame);
	}
	return ret;
}

static NTSTATUS vfs_dfsr_fset_nt_acl(struct vfs_handle_struct *handle,
				     struct files_struct *fsp,
				     uint32_t security_info_sent,
				     const struct security_descriptor *psd)
{
	NTSTATUS st = SMB_VFS_NEXT_FSET_NT_ACL(handle, fsp, security_info_sent,
					       psd);

	if (NT_STATUS_IS_OK(st)) {
		dfsr_changed_fsp(handle, fsp, 'A');
	}
	return st;
}

static NTSTATUS vfs_dfsr_fset_dos_attributes(struct vfs_handle_struct *handle,
					     struct files_struct *fsp,
					     uint32_t dosmode)
{
	NTSTATUS st = SMB_VFS_NEXT_FSET_DOS_ATTRIBUTES(handle, fsp, dosmode);

	if (NT_STATUS_IS_OK(st)) {
		dfsr_changed_fsp(handle, fsp, 'D');
	}
	return st;
}

static int vfs_dfsr_fntimes(struct vfs_handle_struct *handle,
			    struct files_struct *fsp,
			    struct smb_file_time *ft)
{
	int ret = SMB_VFS_NEXT_FNTIMES(handle, fsp, ft);

	if (ret == 0) {
		dfsr_changed_fsp(handle, fsp, 'T');
	}
	return ret;
}

/* A deleted link (NetDfsRemove of its last target, or a client deleting
 * it) leaves our table too. Only on DFS root shares. */
static int vfs_dfsr_unlinkat(struct vfs_handle_struct *handle,
			     struct files_struct *dirfsp,
			     const struct smb_filename *smb_fname, int flags)
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	TALLOC_CTX *frame = NULL;
	int ret = SMB_VFS_NEXT_UNLINKAT(handle, dirfsp, smb_fname, flags);

	if (ret == 0) {
		dfsr_changed_at(handle, 'U', dirfsp, smb_fname);
	}
	if (ret != 0 || (flags & AT_REMOVEDIR) ||
	    smb_fname->stream_name != NULL ||
	    !lp_msdfs_root(SNUM(handle->conn))) {
		return ret;
	}
	frame = talloc_stackframe();
	become_root();
	dfsr_dfs_link_unlinked(lp_state_directory(),
			       lp_servicename(frame, lp_sub, SNUM(handle->conn)),
			       dfsr_share_relative(frame, handle->conn, dirfsp,
						   smb_fname));
	unbecome_root();
	TALLOC_FREE(frame);
	return ret;
}

static struct vfs_fn_pointers vfs_dfsr_fns = {
	.get_dfs_referrals_fn = vfs_dfsr_get_dfs_referrals,
	.read_dfs_pathat_fn = vfs_dfsr_read_dfs_pathat,
	.create_dfs_pathat_fn = vfs_dfsr_create_dfs_pathat,
	.unlinkat_fn = vfs_dfsr_unlinkat,
	.openat_fn = vfs_dfsr_openat,
	.close_fn = vfs_dfsr_close,
	.mkdirat_fn = vfs_dfsr_mkdirat,
	.renameat_fn = vfs_dfsr_renameat,
	.fset_nt_acl_fn = vfs_dfsr_fset_nt_acl,
	.fset_dos_attributes_fn = vfs_dfsr_fset_dos_attributes,
	.fntimes_fn = vfs_dfsr_fntimes,
	.connect_fn = vfs_dfsr_connect,
	.disconnect_fn = vfs_dfsr_disconnect,
};

static_decl_vfs;
NTSTATUS samba_init_module(TALLOC_CTX *ctx)
{
	NTSTATUS status;

	status = smb_register_vfs(SMB_VFS_INTERFACE_VERSION, "dfsr",
				  &vfs_dfsr_fns);
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	vfs_dfsr_debug_class = debug_add_class("dfsr");
	if (vfs_dfsr_debug_class == -1) {
		vfs_dfsr_debug_class = DBGC_VFS;
		DBG_ERR("couldn't register the dfsr debug class, using vfs\n");
	}
	dfsr_module_init(vfs_dfsr_debug_class);
	return NT_STATUS_OK;
}

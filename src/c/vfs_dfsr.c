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
#include "smbd/smbd.h"
#include "lib/param/loadparm.h"
#include "lib/param/param_global.h"
#include "lib/param/s3_param.h"
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
	conn = dfsr_connect(service, handle->conn->connectpath, user,
			    gparams, n_global, sparams, n_share);
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

static struct vfs_fn_pointers vfs_dfsr_fns = {
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

/*
 * smbtorture suite "dfsr.meet": the meet in dfsrd installs staged files
 * (made by `dfsrctl staged create`, tests/meet_torture.rs) over IRPC, and
 * every result is checked over SMB2 against the real smbd serving the same
 * share. smbtorture must load the smb.conf dfsrd runs with (-s), so both
 * find each other's messaging sockets.
 *
 * Options (--option=torture:NAME=VALUE):
 *   dfsr_meet_share   share name the meet installs into (= the tree's)
 *   dfsr_meet_dir     folder with the staged files and their originals:
 *                     full.staged (full.data, full.one, full.Zone.Identifier),
 *                     v2.staged (v2.data)
 *   dfsr_meet_sddl    SDDL full.staged carries
 *   dfsr_meet_attrib  its attributes; dfsr_meet_ctime / _atime / _mtime:
 *                     its creation, access and write times (NTTIME)
 *   dfsr_meet_root    the share's local path (to check DfsrPrivate/Installing)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include <dirent.h>
#include "lib/util/tevent_ntstatus.h"
#include "../libcli/smb/smbXcli_base.h"
#include "libcli/smb2/smb2.h"
#include "libcli/smb2/smb2_calls.h"
#include "torture/torture.h"
#include "torture/smb2/proto.h"
#include "torture/smb2/lease_break_handler.h"
#include "lib/messaging/irpc.h"
#include "lib/messaging/messaging.h"
#include "librpc/rpc/dcerpc.h"
#include "libcli/security/security.h"
#include "dfsr_meet.h"
#include "ndr_dfsr_meet.h"
#include "ndr_dfsr_meet_c.h"
#include "torture_dfsr.h"

#define UID_DB "2d5f8a1e-4c3b-4d6a-9e8f-7a6b5c4d3e2f"

struct meet {
	struct dcerpc_binding_handle *h;
	const char *share;
	const char *dir;
	const char *root;
};

/* Reads the options; false when they are missing (the test skips). */
static bool meet_options(struct torture_context *tctx, struct meet *m)
{
	m->share = torture_setting_string(tctx, "dfsr_meet_share", NULL);
	m->dir = torture_setting_string(tctx, "dfsr_meet_dir", NULL);
	m->root = torture_setting_string(tctx, "dfsr_meet_root", NULL);
	return m->share != NULL && m->dir != NULL && m->root != NULL;
}

/* Finds dfsrd's dfsr_meet name through the messaging of smbtorture's
 * smb.conf. */
static bool meet_connect(struct torture_context *tctx, struct meet *m)
{
	struct imessaging_context *msg = NULL;
	struct server_id *ids = NULL;
	unsigned num = 0;
	NTSTATUS status;

	msg = imessaging_client_init(tctx, tctx->lp_ctx, tctx->ev);
	torture_assert(tctx, msg != NULL, "imessaging_client_init");
	status = irpc_servers_byname(msg, tctx, "dfsr_meet", &num, &ids);
	torture_assert_ntstatus_ok(tctx, status, "no dfsrd holds dfsr_meet");
	torture_assert(tctx, num > 0, "no dfsrd holds dfsr_meet");
	m->h = irpc_binding_handle(tctx, msg, ids[num - 1], &ndr_table_dfsr_meet);
	torture_assert(tctx, m->h != NULL, "irpc_binding_handle");
	dcerpc_binding_handle_set_timeout(m->h, 600);
	return true;
}

/* torture_skip returns from the test itself, so this is a macro. */
#define MEET_SETUP(tctx, m) do {					\
	if (!meet_options((tctx), &(m))) {				\
		torture_skip((tctx), "needs a running dfsrd, -s its smb.conf " \
			     "and --option=torture:dfsr_meet_share/_dir/_root=…"); \
	}								\
	if (!meet_connect((tctx), &(m))) {				\
		return false;						\
	}								\
} while (0)

static const char *staged_path(struct torture_context *tctx,
			       const struct meet *m, const char *name)
{
	return talloc_asprintf(tctx, "%s/%s", m->dir, name);
}

/* Every call waits on smbtorture's own event context: the messaging
 * socket lives there (the _r sync variants poll a private one and never
 * see the answer), and SMB2 lease breaks are served while the meet works.
 * *REASON gets the meet's text. */
static NTSTATUS meet_install(struct torture_context *tctx, const struct meet *m,
			     const char *path, const char *staged,
			     uint64_t uid_version, uint32_t flags,
			     const char **reason)
{
	const char *why = NULL;
	struct dfsr_meet_Install r = {
		.in.share = m->share,
		.in.path = path,
		.in.staged_file = staged,
		.in.uid_version = uid_version,
		.in.flags = flags,
		.out.reason = &why,
	};
	struct tevent_req *req = NULL;
	NTSTATUS status;

	GUID_from_string(UID_DB, &r.in.uid_db);
	req = dcerpc_dfsr_meet_Install_r_send(tctx, tctx->ev, m->h, &r);
	if (req == NULL || !tevent_req_poll(req, tctx->ev)) {
		return NT_STATUS_NO_MEMORY;
	}
	status = dcerpc_dfsr_meet_Install_r_recv(req, tctx);
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	/* [out,ref] pointers come back allocated afresh: read through r. */
	*reason = *r.out.reason != NULL ? *r.out.reason : "";
	torture_comment(tctx, "Install %s: %s %s\n", path,
			nt_errstr(r.out.result), *reason);
	return r.out.result;
}

static NTSTATUS meet_remove(struct torture_context *tctx, const struct meet *m,
			    const char *path)
{
	const char *why = NULL;
	struct dfsr_meet_Remove r = {
		.in.share = m->share, .in.path = path, .out.reason = &why,
	};
	struct tevent_req *req = NULL;
	NTSTATUS status;

	GUID_from_string(UID_DB, &r.in.uid_db);
	req = dcerpc_dfsr_meet_Remove_r_send(tctx, tctx->ev, m->h, &r);
	if (req == NULL || !tevent_req_poll(req, tctx->ev)) {
		return NT_STATUS_NO_MEMORY;
	}
	status = dcerpc_dfsr_meet_Remove_r_recv(req, tctx);
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	torture_comment(tctx, "Remove %s: %s %s\n", path,
			nt_errstr(r.out.result), *r.out.reason);
	return r.out.result;
}

static NTSTATUS meet_move(struct torture_context *tctx, const struct meet *m,
			  const char *from, const char *to)
{
	const char *why = NULL;
	struct dfsr_meet_Move r = {
		.in.share = m->share, .in.path = from, .in.new_path = to,
		.out.reason = &why,
	};
	struct tevent_req *req = dcerpc_dfsr_meet_Move_r_send(tctx, tctx->ev,
							       m->h, &r);
	NTSTATUS status;

	if (req == NULL || !tevent_req_poll(req, tctx->ev)) {
		return NT_STATUS_NO_MEMORY;
	}
	status = dcerpc_dfsr_meet_Move_r_recv(req, tctx);
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	torture_comment(tctx, "Move %s -> %s: %s %s\n", from, to,
			nt_errstr(r.out.result), *r.out.reason);
	return r.out.result;
}

/* The whole of NAME (a file or "file:stream") over SMB2. */
static bool smb2_read_whole(struct torture_context *tctx,
			    struct smb2_tree *tree, const char *name,
			    DATA_BLOB *out)
{
	struct smb2_create cr = {
		.in.desired_access = SEC_FILE_READ_DATA,
		.in.share_access = NTCREATEX_SHARE_ACCESS_MASK,
		.in.create_disposition = NTCREATEX_DISP_OPEN,
		.in.impersonation_level = SMB2_IMPERSONATION_ANONYMOUS,
		.in.fname = name,
	};
	NTSTATUS status;

	*out = data_blob_talloc(tctx, NULL, 0);
	status = smb2_create(tree, tctx, &cr);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "open %s", name));
	for (;;) {
		struct smb2_read rd = {
			.in.file.handle = cr.out.file.handle,
			.in.length = 65536,
			.in.offset = out->length,
		};
		status = smb2_read(tree, tctx, &rd);
		if (NT_STATUS_EQUAL(status, NT_STATUS_END_OF_FILE) ||
		    (NT_STATUS_IS_OK(status) && rd.out.data.length == 0)) {
			break;
		}
		if (!NT_STATUS_IS_OK(status)) {
			smb2_util_close(tree, cr.out.file.handle);
			torture_fail(tctx, talloc_asprintf(tctx, "read %s: %s",
					name, nt_errstr(status)));
		}
		data_blob_append(tctx, out, rd.out.data.data, rd.out.data.length);
	}
	smb2_util_close(tree, cr.out.file.handle);
	return true;
}

/* The same bytes over SMB2 as in the local file LOCAL. */
static bool same_as_local(struct torture_context *tctx, struct smb2_tree *tree,
			  const char *name, const char *local)
{
	size_t size = 0;
	char *want = file_load(local, &size, 0, tctx);
	DATA_BLOB got;

	torture_assert(tctx, want != NULL,
		       talloc_asprintf(tctx, "reading %s", local));
	if (!smb2_read_whole(tctx, tree, name, &got)) {
		return false;
	}
	torture_assert_data_blob_equal(tctx, got,
		data_blob_const(want, size),
		talloc_asprintf(tctx, "%s against %s", name, local));
	return true;
}

static bool all_info(struct torture_context *tctx, struct smb2_tree *tree,
		     const char *name, union smb_fileinfo *info)
{
	struct smb2_handle h;
	NTSTATUS status;

	status = smb2_util_roothandle(tree, &h);
	torture_assert_ntstatus_ok(tctx, status, "root handle");
	status = torture_smb2_open(tree, name, SEC_FILE_READ_ATTRIBUTE, &h);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "open %s", name));
	*info = (union smb_fileinfo) {
		.generic.level = RAW_FILEINFO_SMB2_ALL_INFORMATION,
		.generic.in.file.handle = h,
	};
	status = smb2_getinfo_file(tree, tctx, info);
	smb2_util_close(tree, h);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "all info %s", name));
	return true;
}

static NTSTATUS open_status(struct smb2_tree *tree, TALLOC_CTX *mem,
			    const char *name)
{
	struct smb2_create cr = {
		.in.desired_access = SEC_FILE_READ_ATTRIBUTE,
		.in.share_access = NTCREATEX_SHARE_ACCESS_MASK,
		.in.create_disposition = NTCREATEX_DISP_OPEN,
		.in.impersonation_level = SMB2_IMPERSONATION_ANONYMOUS,
		.in.fname = name,
	};
	NTSTATUS status = smb2_create(tree, mem, &cr);

	if (NT_STATUS_IS_OK(status)) {
		smb2_util_close(tree, cr.out.file.handle);
	}
	return status;
}

/* DfsrPrivate/Installing holds nothing (read locally: clients cannot
 * see DfsrPrivate). */
static bool installing_empty(struct torture_context *tctx, const struct meet *m)
{
	const char *dir = talloc_asprintf(tctx, "%s/DfsrPrivate/Installing",
					  m->root);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return true;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			torture_comment(tctx, "left in Installing: %s\n", e->d_name);
			n++;
		}
	}
	closedir(d);
	torture_assert_int_equal(tctx, n, 0, "DfsrPrivate/Installing is empty");
	return true;
}

/*
 * Content, both alternate streams, the exact SD (owner, group, DACL with a
 * deny ACE and inheritance flags, protection), attributes and the times,
 * all read back over SMB2 after an install over IRPC.
 */
static bool test_meet_install(struct torture_context *tctx,
			      struct smb2_tree *tree)
{
	const char *fname = "meet/install/file.bin";
	const char *sddl = torture_setting_string(tctx, "dfsr_meet_sddl", NULL);
	uint64_t ctime = torture_setting_ulong(tctx, "dfsr_meet_ctime", 0);
	uint64_t atime = torture_setting_ulong(tctx, "dfsr_meet_atime", 0);
	uint64_t mtime = torture_setting_ulong(tctx, "dfsr_meet_mtime", 0);
	int attrib = torture_setting_int(tctx, "dfsr_meet_attrib", -1);
	struct security_descriptor *want = NULL;
	struct security_acl *got = NULL;
	union smb_fileinfo info, sd;
	union smb_fileinfo streams;
	struct smb2_handle h;
	const char *reason;
	NTSTATUS status;
	struct meet m;
	unsigned i;

	MEET_SETUP(tctx, m);
	torture_assert(tctx, sddl != NULL && attrib >= 0 && ctime && atime && mtime,
		       "needs dfsr_meet_sddl, _attrib, _ctime, _atime, _mtime");
	want = sddl_decode(tctx, sddl, NULL);
	torture_assert(tctx, want != NULL, "decoding dfsr_meet_sddl");

	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      100, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	if (!installing_empty(tctx, &m)) {
		return false;
	}

	/* Metadata first: reading the data may move the access time. */
	if (!all_info(tctx, tree, fname, &info)) {
		return false;
	}
	torture_assert_u64_equal(tctx, info.all_info2.out.create_time, ctime,
				 "creation time");
	torture_assert_u64_equal(tctx, info.all_info2.out.access_time, atime,
				 "access time");
	torture_assert_u64_equal(tctx, info.all_info2.out.write_time, mtime,
				 "write time");
	/* Samba reports the write time as the change time
	 * (get_change_timespec); POSIX lets no one set ctime. */
	torture_assert_u64_equal(tctx, info.all_info2.out.change_time, mtime,
				 "change time");
	torture_assert_int_equal(tctx, info.all_info2.out.attrib, attrib,
				 "attributes");

	/* The streams, by name and size, then their bytes. */
	status = torture_smb2_open(tree, fname, SEC_FILE_READ_ATTRIBUTE |
				   SEC_STD_READ_CONTROL, &h);
	torture_assert_ntstatus_ok(tctx, status, "open for stream info");
	streams = (union smb_fileinfo) {
		.generic.level = RAW_FILEINFO_STREAM_INFORMATION,
		.generic.in.file.handle = h,
	};
	status = smb2_getinfo_file(tree, tctx, &streams);
	torture_assert_ntstatus_ok(tctx, status, "stream information");
	sd = (union smb_fileinfo) {
		.query_secdesc.level = RAW_FILEINFO_SEC_DESC,
		.query_secdesc.in.file.handle = h,
		.query_secdesc.in.secinfo_flags = SECINFO_OWNER | SECINFO_GROUP |
						  SECINFO_DACL,
	};
	status = smb2_getinfo_file(tree, tctx, &sd);
	smb2_util_close(tree, h);
	torture_assert_ntstatus_ok(tctx, status, "security descriptor");

	torture_assert_int_equal(tctx, streams.stream_info.out.num_streams, 3,
				 "number of streams");
	for (i = 0; i < streams.stream_info.out.num_streams; i++) {
		struct stream_struct *s = &streams.stream_info.out.streams[i];
		torture_comment(tctx, "stream %s, %llu bytes\n", s->stream_name.s,
				(unsigned long long)s->size);
	}
	if (!same_as_local(tctx, tree, fname,
			   staged_path(tctx, &m, "full.data")) ||
	    !same_as_local(tctx, tree, talloc_asprintf(tctx, "%s:one", fname),
			   staged_path(tctx, &m, "full.one")) ||
	    !same_as_local(tctx, tree,
			   talloc_asprintf(tctx, "%s:Zone.Identifier", fname),
			   staged_path(tctx, &m, "full.Zone.Identifier"))) {
		return false;
	}

	torture_assert(tctx, dom_sid_equal(sd.query_secdesc.out.sd->owner_sid,
					   want->owner_sid), "owner");
	torture_assert(tctx, dom_sid_equal(sd.query_secdesc.out.sd->group_sid,
					   want->group_sid), "group");
	/* Each ACE: type, flags (deny and inheritance included), mask, SID,
	 * in order. (The ACL revision is smbd's to choose.) */
	got = sd.query_secdesc.out.sd->dacl;
	torture_assert(tctx, got != NULL, "a DACL");
	torture_assert_int_equal(tctx, got->num_aces, want->dacl->num_aces,
		talloc_asprintf(tctx, "number of ACEs in %s",
			sddl_encode(tctx, sd.query_secdesc.out.sd, NULL)));
	for (i = 0; i < got->num_aces; i++) {
		const struct security_ace *g = &got->aces[i];
		const struct security_ace *w = &want->dacl->aces[i];

		torture_assert(tctx, g->type == w->type && g->flags == w->flags &&
			       g->access_mask == w->access_mask &&
			       dom_sid_equal(&g->trustee, &w->trustee),
			talloc_asprintf(tctx, "ACE %u: got %s, want %s", i,
				sddl_encode(tctx, sd.query_secdesc.out.sd, NULL),
				sddl));
	}
	torture_assert(tctx, sd.query_secdesc.out.sd->type &
		       SEC_DESC_DACL_PROTECTED, "DACL protected");
	return true;
}

/* A read-only file is replaced by a new version; the replaced version's
 * loser copy lands in ConflictAndDeleted when the request says it lost. */
static bool test_meet_replace(struct torture_context *tctx,
			      struct smb2_tree *tree)
{
	const char *fname = "meet/replace.bin";
	union smb_fileinfo info;
	const char *reason;
	NTSTATUS status;
	struct meet m;

	MEET_SETUP(tctx, m);
	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      101, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	if (!all_info(tctx, tree, fname, &info)) {
		return false;
	}
	torture_assert(tctx, info.all_info2.out.attrib & FILE_ATTRIBUTE_READONLY,
		       "the first version is read-only");
	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "v2.staged"),
			      101, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	if (!same_as_local(tctx, tree, fname, staged_path(tctx, &m, "v2.data")) ||
	    !all_info(tctx, tree, fname, &info)) {
		return false;
	}
	torture_assert_int_equal(tctx, info.all_info2.out.attrib,
				 FILE_ATTRIBUTE_ARCHIVE, "new attributes");
	return installing_empty(tctx, &m);
}

/* A rename and a move keep the same file (its file id), and a removed
 * file is gone. */
static bool test_meet_move_remove(struct torture_context *tctx,
				  struct smb2_tree *tree)
{
	union smb_fileinfo a, b;
	const char *reason;
	NTSTATUS status;
	struct meet m;

	MEET_SETUP(tctx, m);
	status = meet_install(tctx, &m, "meet/mv/a.bin",
			      staged_path(tctx, &m, "v2.staged"), 102, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	if (!all_info(tctx, tree, "meet/mv/a.bin", &a)) {
		return false;
	}
	/* Rename in place, then move under a new parent. */
	status = meet_move(tctx, &m, "meet/mv/a.bin", "meet/mv/b.bin");
	torture_assert_ntstatus_ok(tctx, status, "rename");
	status = meet_move(tctx, &m, "meet/mv/b.bin", "meet/mv/deeper/c.bin");
	torture_assert_ntstatus_ok(tctx, status, "move");
	torture_assert_ntstatus_equal(tctx, open_status(tree, tctx, "meet/mv/a.bin"),
				      NT_STATUS_OBJECT_NAME_NOT_FOUND, "old name");
	torture_assert_ntstatus_equal(tctx, open_status(tree, tctx, "meet/mv/b.bin"),
				      NT_STATUS_OBJECT_NAME_NOT_FOUND, "middle name");
	if (!all_info(tctx, tree, "meet/mv/deeper/c.bin", &b) ||
	    !same_as_local(tctx, tree, "meet/mv/deeper/c.bin",
			   staged_path(tctx, &m, "v2.data"))) {
		return false;
	}
	torture_assert_u64_equal(tctx, b.all_info2.out.file_id,
				 a.all_info2.out.file_id, "the same file");
	/* A move onto an existing name is refused. */
	status = meet_install(tctx, &m, "meet/mv/taken.bin",
			      staged_path(tctx, &m, "v2.staged"), 103, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	torture_assert_ntstatus_equal(tctx,
		meet_move(tctx, &m, "meet/mv/deeper/c.bin", "meet/mv/taken.bin"),
		NT_STATUS_OBJECT_NAME_COLLISION, "move onto an existing name");

	status = meet_remove(tctx, &m, "meet/mv/deeper/c.bin");
	torture_assert_ntstatus_ok(tctx, status, "remove");
	torture_assert_ntstatus_equal(tctx,
		open_status(tree, tctx, "meet/mv/deeper/c.bin"),
		NT_STATUS_OBJECT_NAME_NOT_FOUND, "removed");
	return true;
}

/* An SMB2 handle without delete sharing: the install is refused with a
 * retryable status and the file is untouched; after the close it works. */
static bool test_meet_sharing_violation(struct torture_context *tctx,
					struct smb2_tree *tree)
{
	const char *fname = "meet/held.bin";
	struct smb2_create cr = {
		.in.desired_access = SEC_FILE_READ_DATA,
		.in.share_access = NTCREATEX_SHARE_ACCESS_READ |
				   NTCREATEX_SHARE_ACCESS_WRITE,
		.in.create_disposition = NTCREATEX_DISP_OPEN,
		.in.impersonation_level = SMB2_IMPERSONATION_ANONYMOUS,
		.in.fname = fname,
	};
	struct smb2_read rd = { .in.length = 65536 };
	const char *reason;
	NTSTATUS status;
	struct meet m;
	size_t v1len = 0;
	char *v1 = NULL;

	MEET_SETUP(tctx, m);
	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "v2.staged"),
			      104, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);
	v1 = file_load(staged_path(tctx, &m, "v2.data"), &v1len, 0, tctx);
	torture_assert(tctx, v1 != NULL, "v2.data");

	status = smb2_create(tree, tctx, &cr);
	torture_assert_ntstatus_ok(tctx, status, "client open");
	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      104, 0, &reason);
	torture_assert_ntstatus_equal(tctx, status, NT_STATUS_SHARING_VIOLATION,
				      "install while held");
	torture_assert(tctx, strstr(reason, "retry") != NULL,
		       "the reason says to retry");
	/* Through the client's own handle: still the old bytes. */
	rd.in.file.handle = cr.out.file.handle;
	status = smb2_read(tree, tctx, &rd);
	torture_assert_ntstatus_ok(tctx, status, "read through the handle");
	torture_assert_data_blob_equal(tctx, rd.out.data,
				       data_blob_const(v1, v1len), "unchanged");
	if (!installing_empty(tctx, &m)) {
		return false;
	}
	torture_assert_ntstatus_equal(tctx, meet_remove(tctx, &m, fname),
				      NT_STATUS_SHARING_VIOLATION, "remove while held");
	smb2_util_close(tree, cr.out.file.handle);

	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      104, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, "install after the close");
	return same_as_local(tctx, tree, fname, staged_path(tctx, &m, "full.data"));
}

/*
 * A client caching the file under an RWH lease. The meet's open breaks
 * the lease (to R: the client must stop caching writes and handles) and
 * the install is refused as retryable while the handle stays open; the
 * client acknowledges, closes its cached handle as Windows does on losing
 * H, the retry installs, and the client then reads the new content.
 */
static bool test_meet_lease(struct torture_context *tctx,
			    struct smb2_tree *tree)
{
	const char *fname = "meet/leased.bin";
	struct smb2_create io;
	struct smb2_lease ls;
	const char *reason;
	NTSTATUS status;
	struct meet m;

	MEET_SETUP(tctx, m);
	if (!(smb2cli_conn_server_capabilities(tree->session->transport->conn) &
	      SMB2_CAP_LEASING)) {
		torture_skip(tctx, "the server offers no leases");
	}
	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "v2.staged"),
			      105, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, reason);

	torture_reset_lease_break_info(tctx, &lease_break_info);
	tree->session->transport->lease.handler = torture_lease_handler;
	tree->session->transport->lease.private_data = tree;
	smb2_lease_create(&io, &ls, false, fname, 0x4d454554,
			  smb2_util_lease_state("RWH"));
	io.in.desired_access = SEC_RIGHTS_FILE_ALL;
	io.in.share_access = NTCREATEX_SHARE_ACCESS_MASK;
	io.in.create_disposition = NTCREATEX_DISP_OPEN;
	status = smb2_create(tree, tctx, &io);
	torture_assert_ntstatus_ok(tctx, status, "leased open");
	torture_assert_int_equal(tctx, io.out.oplock_level, SMB2_OPLOCK_LEVEL_LEASE,
				 "lease granted");
	torture_assert_int_equal(tctx, io.out.lease_response.lease_state,
				 smb2_util_lease_state("RWH"), "RWH granted");

	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      105, 0, &reason);
	torture_assert_ntstatus_equal(tctx, status, NT_STATUS_SHARING_VIOLATION,
				      "install while the leased handle is open");
	torture_wait_for_lease_break(tctx);
	torture_comment(tctx, "lease breaks: %d, to 0x%x\n", lease_break_info.count,
			lease_break_info.lease_break.new_lease_state);
	torture_assert_int_equal(tctx, lease_break_info.count, 1,
				 "the meet's open broke the lease");
	torture_assert(tctx, !(lease_break_info.lease_break.new_lease_state &
			       (SMB2_LEASE_WRITE | SMB2_LEASE_HANDLE)),
		       "write and handle caching withdrawn");
	if (!same_as_local(tctx, tree, fname, staged_path(tctx, &m, "v2.data"))) {
		return false;
	}
	smb2_util_close(tree, io.out.file.handle);

	status = meet_install(tctx, &m, fname, staged_path(tctx, &m, "full.staged"),
			      105, 0, &reason);
	torture_assert_ntstatus_ok(tctx, status, "the retry");
	tree->session->transport->lease.handler = NULL;
	return same_as_local(tctx, tree, fname, staged_path(tctx, &m, "full.data"));
}

/* Every kind of bad name is refused before anything is written. */
static bool test_meet_bad_names(struct torture_context *tctx,
				struct smb2_tree *tree)
{
	char long_name[300];
	const char *bad[] = {
		"", "meet/bad//x", "meet/bad/./x", "meet/bad/../x", "../x",
		"/etc/passwd", "meet/bad/a\\b", "meet/bad/a:b", "meet/bad/\x01x",
		"meet/bad/\x7f", long_name, "DfsrPrivate/x", "meet/bad/x/",
	};
	const char *reason;
	NTSTATUS status;
	struct meet m;
	unsigned i;

	MEET_SETUP(tctx, m);
	memset(long_name, 'n', 256);
	long_name[256] = '\0';
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		status = meet_install(tctx, &m, bad[i],
				      staged_path(tctx, &m, "v2.staged"), 106, 0,
				      &reason);
		torture_assert(tctx, !NT_STATUS_IS_OK(status),
			       talloc_asprintf(tctx, "%s was accepted", bad[i]));
		torture_assert(tctx, strlen(reason) > 0, "a reason is given");
	}
	/* Nothing of them exists: not the folder they were aimed at, not
	 * an escape, not a half-installed temporary. */
	torture_assert_ntstatus_equal(tctx, open_status(tree, tctx, "meet/bad"),
				      NT_STATUS_OBJECT_NAME_NOT_FOUND,
				      "nothing was created");
	torture_assert_ntstatus_equal(tctx, open_status(tree, tctx, "x"),
				      NT_STATUS_OBJECT_NAME_NOT_FOUND,
				      "nothing was created at the root");
	return installing_empty(tctx, &m);
}

struct torture_suite *torture_dfsr_meet_suite(TALLOC_CTX *ctx)
{
	struct torture_suite *suite = torture_suite_create(ctx, "meet");

	if (suite == NULL) {
		return NULL;
	}
	suite->description = talloc_strdup(suite,
		"the meet installs over IRPC; checked over SMB2");
	torture_suite_add_1smb2_test(suite, "install", test_meet_install);
	torture_suite_add_1smb2_test(suite, "replace", test_meet_replace);
	torture_suite_add_1smb2_test(suite, "move-remove", test_meet_move_remove);
	torture_suite_add_1smb2_test(suite, "sharing-violation",
				     test_meet_sharing_violation);
	torture_suite_add_1smb2_test(suite, "lease", test_meet_lease);
	torture_suite_add_1smb2_test(suite, "bad-names", test_meet_bad_names);
	return suite;
}

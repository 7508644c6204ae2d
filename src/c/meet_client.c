/*
 * IRPC client of the meet (dfsr_meet in dfsrd), for dfsrctl: one function
 * per call, each loads smb.conf, finds the name, calls and waits. Thin:
 * marshalling and Samba calls only. Compiled by build.rs.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "lib/param/param.h"
#include "source4/lib/messaging/irpc.h"
#include "source4/lib/messaging/messaging.h"
#include "librpc/rpc/dcerpc.h"
#include "dfsr_meet.h"
#include "ndr_dfsr_meet.h"
#include "ndr_dfsr_meet_c.h"
#include "meet_client.h"

struct meet_conn {
	struct tevent_context *ev;
	struct dcerpc_binding_handle *h;
	struct server_id server;
};

static void set_err(char *err, size_t len, const char *msg)
{
	if (err != NULL && len > 0) {
		strlcpy(err, msg, len);
	}
}

/* NT_STATUS_OBJECT_NAME_NOT_FOUND when no dfsrd holds the name. */
static NTSTATUS meet_connect(TALLOC_CTX *mem, const char *configfile,
			     struct meet_conn *c, char *err, size_t errlen)
{
	struct loadparm_context *lp = loadparm_init_global(false);
	struct imessaging_context *imsg = NULL;
	struct server_id *ids = NULL;
	unsigned num = 0, i;
	NTSTATUS status;

	if (lp == NULL || !lpcfg_load(lp, configfile)) {
		set_err(err, errlen, "cannot load the configuration file");
		return NT_STATUS_INVALID_PARAMETER;
	}
	c->ev = samba_tevent_context_init(mem);
	if (c->ev == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	imsg = imessaging_client_init(mem, lp, c->ev);
	if (imsg == NULL) {
		set_err(err, errlen, "cannot set up messaging (is the lock directory readable?)");
		return NT_STATUS_UNSUCCESSFUL;
	}
	status = irpc_servers_byname(imsg, mem, "dfsr_meet", &num, &ids);
	/* names.tdb can keep the name of a dfsrd that was killed. */
	for (i = 0; NT_STATUS_IS_OK(status) && i < num; i++) {
		if (process_exists_by_pid(ids[i].pid)) {
			break;
		}
	}
	if (!NT_STATUS_IS_OK(status) || i == num) {
		set_err(err, errlen, "no dfsrd holds the IRPC name dfsr_meet (is dfsrd running with this smb.conf?)");
		return NT_STATUS_OBJECT_NAME_NOT_FOUND;
	}
	c->server = ids[i];
	c->h = irpc_binding_handle(mem, imsg, c->server, &ndr_table_dfsr_meet);
	if (c->h == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	/* No time limit (installs of big files take long); meet_call
	 * watches the daemon instead. */
	dcerpc_binding_handle_set_timeout(c->h, 0);
	return NT_STATUS_OK;
}

/* Wakes the wait loop every second so it can see a dead dfsrd. */
static void meet_tick(struct tevent_context *ev, struct tevent_timer *te,
		      struct timeval now, void *private_data)
{
	TALLOC_CTX *mem = private_data;

	tevent_add_timer(ev, mem, timeval_current_ofs(1, 0), meet_tick, mem);
}

/* One call through the generic binding-handle API, waiting on our event
 * context (the sync variant times out, see shared/notes/samba-build.md)
 * for as long as the daemon lives. */
static NTSTATUS meet_call(TALLOC_CTX *mem, struct meet_conn *c,
			  uint32_t opnum, void *r, char *err, size_t errlen)
{
	struct tevent_req *req = dcerpc_binding_handle_call_send(
		mem, c->ev, c->h, NULL, &ndr_table_dfsr_meet, opnum, mem, r);

	if (req == NULL ||
	    tevent_add_timer(c->ev, mem, timeval_current_ofs(1, 0), meet_tick,
			     mem) == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	while (tevent_req_is_in_progress(req)) {
		if (tevent_loop_once(c->ev) != 0) {
			return map_nt_error_from_unix(errno);
		}
		if (tevent_req_is_in_progress(req) &&
		    !process_exists_by_pid(c->server.pid)) {
			set_err(err, errlen, "dfsrd exited before it answered");
			return NT_STATUS_CONNECTION_DISCONNECTED;
		}
	}
	return dcerpc_binding_handle_call_recv(req);
}

uint32_t dfsr_meet_client_ping(const char *configfile, uint32_t cookie,
			       uint32_t *pid, char *err, size_t errlen)
{
	TALLOC_CTX *mem = talloc_new(NULL);
	struct meet_conn c;
	struct dfsr_meet_Ping r = { .in.cookie = cookie };
	uint32_t cookie_out = 0;
	NTSTATUS status;

	status = meet_connect(mem, configfile, &c, err, errlen);
	if (NT_STATUS_IS_OK(status)) {
		r.out.cookie_out = &cookie_out;
		r.out.pid = pid;
		status = meet_call(mem, &c, NDR_DFSR_MEET_PING, &r, err, errlen);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = r.out.result;
	}
	/* IRPC handles allocate [out,ref] pointers afresh (ref_alloc): read
	 * the answers through r, not through the locals given. */
	if (NT_STATUS_IS_OK(status)) {
		cookie_out = *r.out.cookie_out;
		*pid = *r.out.pid;
	}
	if (NT_STATUS_IS_OK(status) && cookie_out != cookie) {
		set_err(err, errlen, "dfsrd answered with a different cookie");
		status = NT_STATUS_UNSUCCESSFUL;
	}
	TALLOC_FREE(mem);
	return NT_STATUS_V(status);
}

uint32_t dfsr_meet_client_status(const char *configfile,
				 struct DfsrMeetStatus *out,
				 char *err, size_t errlen)
{
	TALLOC_CTX *mem = talloc_new(NULL);
	struct meet_conn c;
	struct dfsr_meet_status st = { 0 };
	struct dfsr_meet_Status r = { .out.status = &st };
	NTSTATUS status;

	status = meet_connect(mem, configfile, &c, err, errlen);
	if (NT_STATUS_IS_OK(status)) {
		status = meet_call(mem, &c, NDR_DFSR_MEET_STATUS, &r, err, errlen);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = r.out.result;
	}
	if (NT_STATUS_IS_OK(status)) {
		st = *r.out.status;	/* allocated afresh, see Ping */
		out->pid = st.pid;
		out->counters.started_nttime = st.started;
		out->counters.installs_ok = st.installs_ok;
		out->counters.installs_failed = st.installs_failed;
		out->counters.installs_retry = st.installs_retry;
		out->counters.removes_ok = st.removes_ok;
		out->counters.in_progress = st.in_progress;
		strlcpy(out->version, st.version ? st.version : "",
			sizeof(out->version));
	}
	TALLOC_FREE(mem);
	return NT_STATUS_V(status);
}

/* A call whose answer is an NTSTATUS and a reason text (Install, Remove,
 * Move): RESULT and REASON point into R. */
static uint32_t meet_call_with_reason(const char *configfile, uint32_t opnum,
				      void *r, NTSTATUS *result,
				      const char ***reason,
				      char *err, size_t errlen)
{
	TALLOC_CTX *mem = talloc_new(NULL);
	struct meet_conn c;
	NTSTATUS status;

	status = meet_connect(mem, configfile, &c, err, errlen);
	if (NT_STATUS_IS_OK(status)) {
		status = meet_call(mem, &c, opnum, r, err, errlen);
		if (NT_STATUS_IS_OK(status)) {
			/* *reason was allocated afresh, see Ping */
			status = *result;
			set_err(err, errlen, **reason ? **reason : "");
		}
	}
	TALLOC_FREE(mem);
	return NT_STATUS_V(status);
}

uint32_t dfsr_meet_client_install(const char *configfile, const char *share,
				  const char *path, const char *staged_file,
				  const char *uid_db, uint64_t uid_version,
				  uint32_t flags, char *err, size_t errlen)
{
	const char *reason = NULL;
	struct dfsr_meet_Install r = {
		.in.share = share,
		.in.path = path,
		.in.staged_file = staged_file,
		.in.uid_version = uid_version,
		.in.flags = flags,
		.out.reason = &reason,
	};

	if (!NT_STATUS_IS_OK(GUID_from_string(uid_db, &r.in.uid_db))) {
		set_err(err, errlen, "the UID's database GUID is not a GUID");
		return NT_STATUS_V(NT_STATUS_INVALID_PARAMETER);
	}
	return meet_call_with_reason(configfile, NDR_DFSR_MEET_INSTALL, &r,
				     &r.out.result, &r.out.reason, err, errlen);
}

uint32_t dfsr_meet_client_remove(const char *configfile, const char *share,
				 const char *path, const char *uid_db,
				 uint64_t uid_version, uint32_t flags,
				 char *err, size_t errlen)
{
	const char *reason = NULL;
	struct dfsr_meet_Remove r = {
		.in.share = share,
		.in.path = path,
		.in.uid_version = uid_version,
		.in.flags = flags,
		.out.reason = &reason,
	};

	if (!NT_STATUS_IS_OK(GUID_from_string(uid_db, &r.in.uid_db))) {
		set_err(err, errlen, "the UID's database GUID is not a GUID");
		return NT_STATUS_V(NT_STATUS_INVALID_PARAMETER);
	}

	return meet_call_with_reason(configfile, NDR_DFSR_MEET_REMOVE, &r,
				     &r.out.result, &r.out.reason, err, errlen);
}

uint32_t dfsr_meet_client_move(const char *configfile, const char *share,
			       const char *path, const char *new_path,
			       uint32_t flags, char *err, size_t errlen)
{
	const char *reason = NULL;
	struct dfsr_meet_Move r = {
		.in.share = share,
		.in.path = path,
		.in.new_path = new_path,
		.in.flags = flags,
		.out.reason = &reason,
	};

	return meet_call_with_reason(configfile, NDR_DFSR_MEET_MOVE, &r,
				     &r.out.result, &r.out.reason, err, errlen);
}

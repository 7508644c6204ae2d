/*
 * dfsrd: the samba-dfsr daemon, C side. Samba-linked: it loads smb.conf,
 * sets up messaging like Samba's daemons (init sequence measured in
 * shared/notes/meet-host.md) and registers the IRPC name "dfsr_meet".
 * Requests are marshalled to the Rust side (include/dfsr.h). What stays in
 * C is process plumbing: the children table (their supervision), the fork
 * of a large install, and the start-up clean-up call per share.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "smbd/smbd.h"
#include "smbd/globals.h"
#include "lib/cmdline/cmdline.h"
#include "lib/util/become_daemon.h"
#include "lib/util/pidfile.h"
#include "lib/smbd_shim.h"
#include "lib/global_contexts.h"
#include "lib/param/param.h"
#include "lib/util/memcache.h"
#include "source4/lib/messaging/irpc.h"
#include "source4/lib/messaging/messaging.h"
#include "messages.h"
#include "secrets.h"
#include "passdb.h"
#include "auth.h"
#include "locking/proto.h"
#include "lib/interface.h"
#include "dfsr_meet.h"
#include "ndr_dfsr_meet.h"
#include "dfsr.h"
#include "lib/util/sys_rw.h"
#include "lib/util/sys_rw_data.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static bool dfsrd_stop;

/*
 * The mark of the meet's process: the dfsr VFS module, loaded into this
 * process for the shares the meet writes to, finds this symbol (dlsym) and
 * tags those connections origin=meet, so change capture never replicates
 * an installed update back as a local change. Exported through
 * src/c/dfsrd.dynlist; no smbd has it.
 */
__attribute__((used, visibility("default")))
const int dfsrd_meet_process = 1;

static NTSTATUS dfsrd_ping(struct irpc_message *msg, struct dfsr_meet_Ping *r)
{
	*r->out.cookie_out = r->in.cookie;
	*r->out.pid = (uint32_t)getpid();
	r->out.result = NT_STATUS_OK;
	return NT_STATUS_OK;
}

static NTSTATUS dfsrd_status(struct irpc_message *msg,
			     struct dfsr_meet_Status *r)
{
	struct DfsrMeetCounters c = dfsr_meet_counters();

	r->out.status->pid = (uint32_t)getpid();
	r->out.status->started = c.started_nttime;
	r->out.status->installs_ok = c.installs_ok;
	r->out.status->installs_failed = c.installs_failed;
	r->out.status->installs_retry = c.installs_retry;
	r->out.status->removes_ok = c.removes_ok;
	r->out.status->in_progress = c.in_progress;
	r->out.status->version = talloc_strdup(r, dfsr_version());
	r->out.result = NT_STATUS_OK;
	return NT_STATUS_OK;
}

/*
 * A large install runs in a child process, so it never blocks the event
 * loop (Ping, Status and other installs go on) and concurrent installs do
 * not share one current directory. The IRPC reply is deferred until the
 * child reports. The child dies with dfsrd (PDEATHSIG), so a killed dfsrd
 * leaves nothing running. A small one (dfsr_meet_install_runs_inline)
 * runs at once in this process: a fork costs more than it does.
 */
struct dfsrd_install_state {
	struct irpc_message *msg;
	struct dfsr_meet_Install *r;
	struct tevent_fd *fde;
	pid_t pid;
	int fd;
};

static void dfsrd_install_done(struct tevent_context *ev,
			       struct tevent_fd *fde, uint16_t flags,
			       void *private_data)
{
	struct dfsrd_install_state *state = talloc_get_type_abort(
		private_data, struct dfsrd_install_state);
	uint32_t status = NT_STATUS_V(NT_STATUS_INTERNAL_ERROR);
	char reason[1024] = "the install process ended without an answer";
	size_t got = 0;
	ssize_t n;

	TALLOC_FREE(state->fde);
	if (read_data(state->fd, &status, sizeof(status)) == sizeof(status)) {
		/* The reason, up to EOF (the child exits after writing). */
		while ((n = sys_read(state->fd, reason + got,
				     sizeof(reason) - 1 - got)) > 0) {
			got += n;
		}
		reason[got] = '\0';
	}
	close(state->fd);
	waitpid(state->pid, NULL, 0);
	dfsr_meet_install_finished(status);
	state->r->out.result = NT_STATUS(status);
	*state->r->out.reason = talloc_strdup(state->r, reason);
	irpc_send_reply(state->msg, NT_STATUS_OK);
}

static NTSTATUS dfsrd_install(struct irpc_message *msg,
			      struct dfsr_meet_Install *r)
{
	struct dfsrd_install_state *state = NULL;
	int fds[2];

	if (dfsr_meet_install_runs_inline((const char *)r->in.staged_file)) {
		char reason[1024] = "";
		struct GUID_txt_buf uid_buf;
		uint32_t st;

		dfsr_meet_install_started();
		st = dfsr_meet_install((const char *)r->in.share,
				       (const char *)r->in.path,
				       (const char *)r->in.staged_file,
				       GUID_buf_string(&r->in.uid_db, &uid_buf),
				       r->in.uid_version, r->in.flags,
				       reason, sizeof(reason));
		dfsr_meet_install_finished(st);
		r->out.result = NT_STATUS(st);
		*r->out.reason = talloc_strdup(r, reason);
		return NT_STATUS_OK;
	}
	state = talloc_zero(msg, struct dfsrd_install_state);
	if (state == NULL || pipe(fds) != 0) {
		return NT_STATUS_NO_MEMORY;
	}
	state->msg = msg;
	state->r = r;
	dfsr_meet_install_started();
	state->pid = fork();
	if (state->pid == -1) {
		close(fds[0]);
		close(fds[1]);
		dfsr_meet_install_finished(NT_STATUS_V(NT_STATUS_NO_MEMORY));
		return map_nt_error_from_unix(errno);
	}
	if (state->pid == 0) {
		char reason[1024] = "";
		struct GUID_txt_buf uid_buf;
		uint32_t st;
		NTSTATUS status;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		/* Own server id for share modes and notify. */
		status = reinit_after_fork(global_messaging_context(),
					   global_event_context(), true,
					   "dfsrd-install");
		if (!NT_STATUS_IS_OK(status)) {
			st = NT_STATUS_V(status);
			snprintf(reason, sizeof(reason), "reinit_after_fork: %s",
				 nt_errstr(status));
		} else {
			st = dfsr_meet_install(
				(const char *)r->in.share,
				(const char *)r->in.path,
				(const char *)r->in.staged_file,
				GUID_buf_string(&r->in.uid_db, &uid_buf),
				r->in.uid_version, r->in.flags,
				reason, sizeof(reason));
		}
		write_data(fds[1], &st, sizeof(st));
		write_data(fds[1], reason, strlen(reason));
		_exit(0);
	}
	close(fds[1]);
	state->fd = fds[0];
	state->fde = tevent_add_fd(global_event_context(), state, state->fd,
				   TEVENT_FD_READ, dfsrd_install_done, state);
	if (state->fde == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	msg->defer_reply = true;
	return NT_STATUS_OK;
}

static NTSTATUS dfsrd_remove(struct irpc_message *msg,
			     struct dfsr_meet_Remove *r)
{
	char reason[1024] = "";
	struct GUID_txt_buf uid_buf;

	r->out.result = NT_STATUS(dfsr_meet_remove(
		(const char *)r->in.share, (const char *)r->in.path,
		GUID_buf_string(&r->in.uid_db, &uid_buf), r->in.uid_version,
		r->in.flags, reason, sizeof(reason)));
	*r->out.reason = talloc_strdup(r, reason);
	return NT_STATUS_OK;
}

static NTSTATUS dfsrd_move(struct irpc_message *msg,
			   struct dfsr_meet_Move *r)
{
	char reason[1024] = "";

	r->out.result = NT_STATUS(dfsr_meet_move(
		(const char *)r->in.share, (const char *)r->in.path,
		(const char *)r->in.new_path, r->in.flags,
		reason, sizeof(reason)));
	*r->out.reason = talloc_strdup(r, reason);
	return NT_STATUS_OK;
}

/*
 * The children dfsrd keeps running, one row each: a name (its process
 * name and what the log calls it), its entry (run in the child after
 * reinit_after_fork; its return is the exit status), its pid and its
 * back-off state. A child dies with dfsrd (PDEATHSIG); dfsrd watches it
 * through a pipe only the child writes to: when it ends (a crash, a
 * kill), its end closes and the child is started again after the delay
 * the Rust side decides (dfsr_child_restart_delay: src/member/children.rs).
 * Adding a child is adding a row and starting it.
 */
struct dfsrd_child {
	const char *proc_name;
	const char *what;
	int (*entry)(void);
	pid_t pid;
	time_t started;
	uint32_t backoff;
};

/*
 * The MS-FRS2 wire (ncacn_ip_tcp on "dfsr:rpc port", default 5722; 0
 * disables it): the socket is opened here, so a listening dfsrd is ready
 * once started, and served by one child that does all its Samba calls
 * (gensec) from one thread, on the same socket across restarts. A port
 * that cannot be opened is logged and leaves dfsrd without the wire, not
 * without the meet.
 */
static int dfsr_debug_class = DBGC_ALL;

#define DFSRD_MAX_RPC_FDS 32
static int rpc_fds[DFSRD_MAX_RPC_FDS];
static size_t n_rpc_fds;

static int dfsrd_rpc_entry(void)
{
	return dfsr_rpc_serve(rpc_fds, n_rpc_fds, lp_state_directory(),
			      lp_parm_const_string(-1, "dfsr", "rpc allow", ""),
			      lp_parm_const_string(-1, "dfsr", "member name", ""),
			      lp_netbios_name());
}

/*
 * The replication member (src/member/run.rs): pulls from partners and
 * installs through the meet in its own process, so a long sync never
 * holds up the meet's IRPC requests; it reads the replication
 * configuration itself, so it runs (idle) on a server with none.
 */
static int dfsrd_member_entry(void)
{
	return dfsr_member_run(lp_state_directory(),
			       lp_parm_const_string(-1, "dfsr", "member name", ""),
			       lp_netbios_name(),
			       lp_parm_const_string(-1, "dfsr", "partner credentials", ""),
			       lp_workgroup(),
			       (uint32_t)lp_parm_int(-1, "dfsr", "poll interval", 10),
			       (uint32_t)lp_parm_int(-1, "dfsr", "scan interval", 60),
			       lp_parm_bool(-1, "dfsr", "scan at start", true));
}

enum { DFSRD_CHILD_RPC, DFSRD_CHILD_MEMBER, DFSRD_CHILDREN };

static struct dfsrd_child dfsrd_children[DFSRD_CHILDREN] = {
	[DFSRD_CHILD_RPC] = {
		.proc_name = "dfsrd-rpc",
		.what = "the MS-FRS2 listener",
		.entry = dfsrd_rpc_entry,
		.pid = -1,
	},
	[DFSRD_CHILD_MEMBER] = {
		.proc_name = "dfsrd-member",
		.what = "the replication member",
		.entry = dfsrd_member_entry,
		.pid = -1,
	},
};

static void dfsrd_child_start(struct tevent_context *ev,
			      struct dfsrd_child *c);

static void dfsrd_child_restart(struct tevent_context *ev,
				struct tevent_timer *te,
				struct timeval now, void *private_data)
{
	dfsrd_child_start(ev, private_data);
}

static void dfsrd_child_schedule(struct tevent_context *ev,
				 struct dfsrd_child *c)
{
	uint32_t delay = dfsr_child_restart_delay(&c->backoff);

	DBG_ERR("dfsrd: restarting %s in %u s\n", c->what, delay);
	if (tevent_add_timer(ev, NULL, timeval_current_ofs(delay, 0),
			     dfsrd_child_restart, c) == NULL) {
		DBG_ERR("dfsrd: cannot schedule the restart of %s\n", c->what);
	}
}

static void dfsrd_child_exited(struct tevent_context *ev,
			       struct tevent_fd *fde, uint16_t flags,
			       void *private_data)
{
	struct dfsrd_child *c = private_data;
	int st = 0;
	pid_t got;

	TALLOC_FREE(fde);
	do {
		got = waitpid(c->pid, &st, 0);
	} while (got == -1 && errno == EINTR);
	if (got == c->pid) {
		DBG_ERR("dfsrd: %s (pid %d) ended (%s %d)\n", c->what,
			(int)c->pid, WIFSIGNALED(st) ? "signal" : "exit status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	c->pid = -1;
	dfsr_child_ended(&c->backoff, (int64_t)(time(NULL) - c->started));
	dfsrd_child_schedule(ev, c);
}

static void dfsrd_child_start(struct tevent_context *ev,
			      struct dfsrd_child *c)
{
	pid_t parent = getpid();
	struct tevent_fd *fde = NULL;
	int watch[2];
	pid_t pid;

	if (pipe(watch) == -1) {
		DBG_ERR("dfsrd: pipe: %s\n", strerror(errno));
		dfsrd_child_schedule(ev, c);
		return;
	}
	pid = fork();
	if (pid == 0) {
		NTSTATUS status;

		close(watch[0]);
		/* dfsrd's own tevent handlers must not outlive the fork. */
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(0);
		}
		status = reinit_after_fork(global_messaging_context(),
					   global_event_context(), true,
					   c->proc_name);
		if (!NT_STATUS_IS_OK(status)) {
			DBG_ERR("%s: reinit_after_fork: %s\n", c->proc_name,
				nt_errstr(status));
			_exit(1);
		}
		_exit(c->entry());
	}
	close(watch[1]);
	if (pid == -1) {
		DBG_ERR("dfsrd: cannot fork %s: %s\n", c->what, strerror(errno));
		close(watch[0]);
		dfsrd_child_schedule(ev, c);
		return;
	}
	c->pid = pid;
	c->started = time(NULL);
	fde = tevent_add_fd(ev, NULL, watch[0], TEVENT_FD_READ,
			    dfsrd_child_exited, c);
	if (fde == NULL) {
		/* Unwatched, it could not be restarted: stop it and retry. */
		close(watch[0]);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR) {
		}
		c->pid = -1;
		dfsrd_child_schedule(ev, c);
		return;
	}
	tevent_fd_set_auto_close(fde);
}

/* At shutdown: the children go with dfsrd. */
static void dfsrd_children_stop(void)
{
	int i;

	for (i = 0; i < DFSRD_CHILDREN; i++) {
		struct dfsrd_child *c = &dfsrd_children[i];
		if (c->pid > 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, 0);
			c->pid = -1;
		}
	}
}

static void dfsrd_start_rpc(struct tevent_context *ev)
{
	int port = lp_parm_int(-1, "dfsr", "rpc port", 5722);
	const char *address = lp_parm_const_string(-1, "dfsr", "rpc address", "");
	TALLOC_CTX *frame = NULL;
	const char **ifaces = NULL;
	int i, n_ifaces, n;

	if (port <= 0 || port > 65535) {
		DBG_NOTICE("dfsrd: MS-FRS2 listener disabled (dfsr:rpc port = %d)\n",
			   port);
		return;
	}
	/* Where smbd listens: the addresses of "interfaces". */
	frame = talloc_stackframe();
	load_interfaces();
	n_ifaces = iface_count();
	ifaces = talloc_zero_array(frame, const char *, n_ifaces + 1);
	for (i = 0; ifaces != NULL && i < n_ifaces; i++) {
		char addr[INET6_ADDRSTRLEN];

		print_sockaddr(addr, sizeof(addr), iface_n_sockaddr_storage(i));
		ifaces[i] = talloc_strdup(ifaces, addr);
	}
	n = dfsr_rpc_listen(address, (uint16_t)port, lp_bind_interfaces_only(),
			    ifaces, ifaces == NULL ? 0 : (size_t)n_ifaces,
			    rpc_fds, DFSRD_MAX_RPC_FDS);
	TALLOC_FREE(frame);
	if (n <= 0) {
		return;
	}
	n_rpc_fds = (size_t)n;
	dfsrd_child_start(ev, &dfsrd_children[DFSRD_CHILD_RPC]);
}

static void dfsrd_sigterm(struct tevent_context *ev,
			  struct tevent_signal *se,
			  int signum, int count, void *siginfo,
			  void *private_data)
{
	dfsrd_stop = true;
}

int main(int argc, const char *argv[])
{
	const struct loadparm_substitution *lp_sub =
		loadparm_s3_global_substitution();
	static const struct smbd_shim shim = {
		.become_root = smbd_become_root,
		.unbecome_root = smbd_unbecome_root,
	};
	struct poptOption long_options[] = {
		POPT_AUTOHELP
		POPT_COMMON_SAMBA
		POPT_COMMON_DAEMON
		POPT_COMMON_VERSION
		POPT_TABLEEND
	};
	struct samba_cmdline_daemon_cfg *cmdline_daemon_cfg = NULL;
	struct imessaging_context *imsg = NULL;
	struct loadparm_context *lp_ctx = NULL;
	struct messaging_context *msg = NULL;
	struct tevent_context *ev = NULL;
	TALLOC_CTX *frame = NULL;
	poptContext pc;
	NTSTATUS status;
	int opt;

	talloc_enable_null_tracking();
	frame = talloc_stackframe();
	umask(0);
	smb_init_locale();

	if (!samba_cmdline_init(frame, SAMBA_CMDLINE_CONFIG_SERVER,
				true /* require_smbconf */)) {
		fprintf(stderr, "dfsrd: failed to init the command line parser\n");
		return 1;
	}
	cmdline_daemon_cfg = samba_cmdline_get_daemon_cfg();
	pc = samba_popt_get_context("dfsrd", argc, argv, long_options, 0);
	if (pc == NULL) {
		fprintf(stderr, "dfsrd: failed to set up popt\n");
		return 1;
	}
	while ((opt = poptGetNextOpt(pc)) != -1) {
		fprintf(stderr, "dfsrd: invalid option %s: %s\n",
			poptBadOption(pc, 0), poptStrerror(opt));
		poptPrintUsage(pc, stderr, 0);
		return 1;
	}
	poptFreeContext(pc);

	if (geteuid() != 0) {
		fprintf(stderr, "dfsrd: must run as root\n");
		return 1;
	}
	if (cmdline_daemon_cfg->interactive) {
		setup_logging("dfsrd", DEBUG_DEFAULT_STDOUT);
	} else {
		setup_logging("dfsrd", DEBUG_FILE);
	}
	set_smbd_shim(&shim);
	sec_init();
	/* Our debug class exists before smb.conf is (re)loaded, so that
	 * "log level = 1 dfsr:3" sets it, as in smbd. */
	dfsr_debug_class = debug_add_class("dfsr");
	if (dfsr_debug_class == -1) {
		dfsr_debug_class = DBGC_ALL;
	}
	/* samba_cmdline_init loaded the globals only; shares too. */
	if (!lp_load_with_shares(get_dyn_CONFIGFILE())) {
		fprintf(stderr, "dfsrd: cannot load %s\n", get_dyn_CONFIGFILE());
		return 1;
	}
	reopen_logs();
	/* Like smbd: a daemon unless -i; -F stays in the foreground. */
	if (!cmdline_daemon_cfg->interactive) {
		become_daemon(cmdline_daemon_cfg->fork,
			      cmdline_daemon_cfg->no_process_group, false);
	}
	init_sec_ctx();
	mangle_reset_cache();
	memcache_set_global(smbd_memcache());

	msg = global_messaging_context();
	ev = global_event_context();
	if (msg == NULL || ev == NULL) {
		DBG_ERR("dfsrd: cannot initialise messaging\n");
		return 1;
	}
	if (!secrets_init()) {
		DBG_ERR("dfsrd: cannot open secrets.tdb\n");
		return 1;
	}
	if (!initialize_password_db(false, ev)) {
		DBG_ERR("dfsrd: cannot open the passdb backend\n");
		return 1;
	}
	if (!locking_init()) {
		DBG_ERR("dfsrd: cannot open the locking databases\n");
		return 1;
	}
	/* The meet acts as SYSTEM (uid 0): shared/notes/meet-host.md. */
	status = init_system_session_info(NULL);
	if (!NT_STATUS_IS_OK(status)) {
		DBG_ERR("dfsrd: init_system_session_info: %s\n", nt_errstr(status));
		return 1;
	}

	dfsr_daemon_init(dfsr_debug_class);

	/* A crash mid-install leaves only temporaries: clear them. A module
	 * that cannot be loaded is reported now, not at the first install. */
	{
		int snum, n = lp_numservices();
		for (snum = 0; snum < n; snum++) {
			char *path = NULL;
			if (!lp_snum_ok(snum) || lp_printable(snum)) {
				continue;
			}
			path = lp_path(frame, lp_sub, snum);
			dfsr_meet_clean_installing(lp_servicename(frame, lp_sub, snum), path);
			dfsr_meet_check_share(lp_servicename(frame, lp_sub, snum));
			TALLOC_FREE(path);
		}
	}

	dfsrd_start_rpc(ev);
	dfsrd_child_start(ev, &dfsrd_children[DFSRD_CHILD_MEMBER]);

	lp_ctx = loadparm_init_s3(frame, loadparm_s3_helpers());
	imsg = imessaging_init(frame, lp_ctx, messaging_server_id(msg), ev);
	if (imsg == NULL) {
		DBG_ERR("dfsrd: imessaging_init failed\n");
		return 1;
	}
	status = IRPC_REGISTER(imsg, dfsr_meet, DFSR_MEET_PING, dfsrd_ping, NULL);
	if (NT_STATUS_IS_OK(status)) {
		status = IRPC_REGISTER(imsg, dfsr_meet, DFSR_MEET_STATUS,
				       dfsrd_status, NULL);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = IRPC_REGISTER(imsg, dfsr_meet, DFSR_MEET_INSTALL,
				       dfsrd_install, NULL);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = IRPC_REGISTER(imsg, dfsr_meet, DFSR_MEET_REMOVE,
				       dfsrd_remove, NULL);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = IRPC_REGISTER(imsg, dfsr_meet, DFSR_MEET_MOVE,
				       dfsrd_move, NULL);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = irpc_add_name(imsg, "dfsr_meet");
	}
	if (!NT_STATUS_IS_OK(status)) {
		DBG_ERR("dfsrd: registering IRPC dfsr_meet: %s\n",
			nt_errstr(status));
		return 1;
	}
	if (tevent_add_signal(ev, frame, SIGTERM, 0, dfsrd_sigterm, NULL) == NULL ||
	    tevent_add_signal(ev, frame, SIGINT, 0, dfsrd_sigterm, NULL) == NULL) {
		DBG_ERR("dfsrd: cannot handle SIGTERM\n");
		return 1;
	}
	pidfile_create(lp_pid_directory(), "dfsrd");
	DBG_NOTICE("dfsrd %s started, IRPC name dfsr_meet, pid %d\n",
		   dfsr_version(), (int)getpid());

	while (!dfsrd_stop) {
		TALLOC_CTX *loop = talloc_stackframe();
		int ret = tevent_loop_once(ev);
		TALLOC_FREE(loop);
		if (ret != 0) {
			DBG_ERR("dfsrd: tevent_loop_once: %s\n", strerror(errno));
			break;
		}
	}

	DBG_NOTICE("dfsrd: stopping\n");
	dfsrd_children_stop();
	irpc_remove_name(imsg, "dfsr_meet");
	TALLOC_FREE(imsg);
	pidfile_unlink(lp_pid_directory(), "dfsrd");
	TALLOC_FREE(frame);
	return 0;
}

/*
 * smbtorture suite "dfsr": end-to-end tests of samba-dfsr over SMB, loaded
 * with `smbtorture --load-module=.../smbtorture-dfsr.so //HOST/SHARE dfsr`.
 * dfsr.meet.* lives in torture_dfsr_meet.c.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "libcli/smb2/smb2.h"
#include "libcli/smb2/smb2_calls.h"
#include "torture/torture.h"
#include "torture/smbtorture.h"
#include "torture/smb2/proto.h"
#include "librpc/gen_ndr/ndr_dfsblobs.h"
#include "torture_dfsr.h"

#define FNAME "dfsr_ads_roundtrip.txt"
#define SNAME FNAME ":dfsr.stream"

static bool read_all(struct torture_context *tctx, struct smb2_tree *tree,
		     const char *name, DATA_BLOB *out)
{
	struct smb2_create cr = {
		.in.desired_access = SEC_FILE_READ_DATA,
		.in.share_access = NTCREATEX_SHARE_ACCESS_READ |
				   NTCREATEX_SHARE_ACCESS_WRITE,
		.in.create_disposition = NTCREATEX_DISP_OPEN,
		.in.impersonation_level = SMB2_IMPERSONATION_ANONYMOUS,
		.in.fname = name,
	};
	struct smb2_read rd = { .in.length = 0 };
	NTSTATUS status;

	status = smb2_create(tree, tctx, &cr);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "open %s", name));
	rd.in.file.handle = cr.out.file.handle;
	rd.in.length = 65536;
	rd.in.offset = 0;
	status = smb2_read(tree, tctx, &rd);
	smb2_util_close(tree, cr.out.file.handle);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "read %s", name));
	*out = rd.out.data;
	return true;
}

static bool write_new(struct torture_context *tctx, struct smb2_tree *tree,
		      const char *name, const char *text)
{
	struct smb2_handle h;
	NTSTATUS status;

	status = torture_smb2_testfile(tree, name, &h);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "create %s", name));
	status = smb2_util_write(tree, h, text, 0, strlen(text));
	smb2_util_close(tree, h);
	torture_assert_ntstatus_ok(tctx, status,
				   talloc_asprintf(tctx, "write %s", name));
	return true;
}

/* A file with an alternate data stream: both read back as written. */
static bool test_ads_roundtrip(struct torture_context *tctx,
			       struct smb2_tree *tree)
{
	const char *main_text = "main data of a dfsr test file\n";
	const char *stream_text = "alternate data stream contents\n";
	DATA_BLOB got;
	bool ok = false;

	smb2_util_unlink(tree, FNAME);
	if (!write_new(tctx, tree, FNAME, main_text) ||
	    !write_new(tctx, tree, SNAME, stream_text)) {
		goto done;
	}
	if (!read_all(tctx, tree, FNAME, &got)) {
		goto done;
	}
	torture_assert_data_blob_equal(tctx, got,
		data_blob_string_const(main_text), "main stream content");
	if (!read_all(tctx, tree, SNAME, &got)) {
		goto done;
	}
	torture_assert_data_blob_equal(tctx, got,
		data_blob_string_const(stream_text), "alternate stream content");
	ok = true;
done:
	smb2_util_unlink(tree, FNAME);
	return ok;
}

/* The network address of a V2/V3/V4 entry. */
static const char *referral_target(const struct dfs_referral_type *t)
{
	switch (t->version) {
	case 2:
		return t->referral.v2.netw_address;
	case 3:
		return t->referral.v3.referrals.r1.netw_address;
	case 4:
		return t->referral.v4.referrals.r1.netw_address;
	default:
		return NULL;
	}
}

/* FSCTL_DFS_GET_REFERRALS for PATH at LEVEL, set up as Windows and
 * cifs.ko send it (no file handle). */
static bool referral_ioctl(TALLOC_CTX *mem, const char *path, int level,
			   struct smb2_ioctl *io)
{
	struct dfs_GetDFSReferral_in in = {
		.max_referral_level = level,
		.servername = path,
	};
	enum ndr_err_code ndr_err;

	*io = (struct smb2_ioctl) { .level = RAW_IOCTL_SMB2 };
	ndr_err = ndr_push_struct_blob(&io->in.out, mem, &in,
			(ndr_push_flags_fn_t)ndr_push_dfs_GetDFSReferral_in);
	io->in.file.handle.data[0] = UINT64_MAX;
	io->in.file.handle.data[1] = UINT64_MAX;
	io->in.function = FSCTL_DFS_GET_REFERRALS;
	io->in.max_output_response = 0xffff;
	io->in.flags = SMB2_IOCTL_FLAG_IS_FSCTL;
	return NDR_ERR_CODE_IS_SUCCESS(ndr_err);
}

/*
 * FSCTL_DFS_GET_REFERRALS over SMB2, as Windows and cifs.ko send it. Run
 * against //HOST/IPC$; the path, level and expected answer come as
 * options: --option=torture:dfsr_referral_path='\\host\root\link'
 * torture:dfsr_referral_level=N torture:dfsr_expect_version=V
 * torture:dfsr_expect_count=C torture:dfsr_expect_first='\\host\share'.
 */
static bool test_referral(struct torture_context *tctx, struct smb2_tree *tree)
{
	const char *path = torture_setting_string(tctx, "dfsr_referral_path", NULL);
	int level = torture_setting_int(tctx, "dfsr_referral_level", 4);
	int version = torture_setting_int(tctx, "dfsr_expect_version", level);
	int count = torture_setting_int(tctx, "dfsr_expect_count", -1);
	const char *first = torture_setting_string(tctx, "dfsr_expect_first", NULL);
	struct dfs_referral_resp resp = { 0 };
	struct smb2_ioctl io = { 0 };
	enum ndr_err_code ndr_err;
	NTSTATUS status;
	int i;

	if (path == NULL) {
		torture_skip(tctx, "needs --option=torture:dfsr_referral_path=… "
			     "and a namespace on the server");
	}
	torture_assert(tctx, referral_ioctl(tctx, path, level, &io),
		       "push request");
	status = smb2_ioctl(tree, tctx, &io);
	torture_assert_ntstatus_ok(tctx, status, "FSCTL_DFS_GET_REFERRALS");
	ndr_err = ndr_pull_struct_blob(&io.out.out, tctx, &resp,
			(ndr_pull_flags_fn_t)ndr_pull_dfs_referral_resp);
	torture_assert(tctx, NDR_ERR_CODE_IS_SUCCESS(ndr_err), "pull response");
	torture_comment(tctx, "%s: path_consumed %u, %u entries, flags 0x%x\n",
			path, resp.path_consumed, resp.nb_referrals,
			resp.header_flags);
	for (i = 0; i < resp.nb_referrals; i++) {
		torture_comment(tctx, "  V%u %s\n",
				resp.referral_entries[i].version,
				referral_target(&resp.referral_entries[i]));
		torture_assert_int_equal(tctx, resp.referral_entries[i].version,
					 version, "entry version");
	}
	if (count >= 0) {
		torture_assert_int_equal(tctx, resp.nb_referrals, count,
					 "number of entries");
	}
	if (first != NULL) {
		torture_assert(tctx, resp.nb_referrals > 0, "no entries");
		torture_assert_str_equal(tctx,
			referral_target(&resp.referral_entries[0]), first,
			"first target");
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/*
 * A benchmark, not a test (benches/referral.rs runs it): REQUESTS referral
 * requests for PREFIX<i % LINKS> over one SMB2 connection, printing the
 * rate and the p99 latency. Options: torture:dfsr_bench_prefix,
 * torture:dfsr_bench_links, torture:dfsr_bench_requests.
 */
static bool bench_referral(struct torture_context *tctx, struct smb2_tree *tree)
{
	const char *prefix = torture_setting_string(tctx, "dfsr_bench_prefix", NULL);
	int links = torture_setting_int(tctx, "dfsr_bench_links", 1);
	int requests = torture_setting_int(tctx, "dfsr_bench_requests", 1000);
	uint64_t *lat = NULL;
	struct timeval start, t0, t1;
	double secs;
	int i;

	if (prefix == NULL) {
		torture_skip(tctx, "needs --option=torture:dfsr_bench_prefix=…");
	}
	lat = talloc_array(tctx, uint64_t, requests);
	torture_assert(tctx, lat != NULL, "no memory");
	start = timeval_current();
	for (i = 0; i < requests; i++) {
		char *path = talloc_asprintf(tctx, "%s%d", prefix, i % links);
		struct smb2_ioctl io;
		NTSTATUS status;

		torture_assert(tctx, referral_ioctl(tctx, path, 4, &io),
			       "push request");
		t0 = timeval_current();
		status = smb2_ioctl(tree, tctx, &io);
		t1 = timeval_current();
		torture_assert_ntstatus_ok(tctx, status, path);
		lat[i] = usec_time_diff(&t1, &t0);
		talloc_free(path);
		data_blob_free(&io.in.out);
		data_blob_free(&io.out.out);
	}
	secs = timeval_elapsed(&start);
	qsort(lat, requests, sizeof(lat[0]), cmp_u64);
	printf("dfsr-bench: %d referrals in %.3f s: %.0f/s, p50 %llu us, p99 %llu us\n",
	       requests, secs, requests / secs,
	       (unsigned long long)lat[requests / 2],
	       (unsigned long long)lat[(requests * 99) / 100]);
	return true;
}

NTSTATUS samba_init_module(TALLOC_CTX *ctx)
{
	struct torture_suite *suite = torture_suite_create(ctx, "dfsr");
	struct torture_suite *namespace = NULL;

	if (suite == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	suite->description = talloc_strdup(suite, "samba-dfsr tests");
	torture_suite_add_1smb2_test(suite, "ads-roundtrip", test_ads_roundtrip);
	namespace = torture_suite_create(suite, "namespace");
	if (namespace == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	torture_suite_add_1smb2_test(namespace, "referral", test_referral);
	torture_suite_add_1smb2_test(namespace, "referral-bench", bench_referral);
	torture_suite_add_suite(suite, namespace);
	torture_suite_add_suite(suite, torture_dfsr_meet_suite(suite));
	if (!torture_register_suite(ctx, suite)) {
		return NT_STATUS_UNSUCCESSFUL;
	}
	return NT_STATUS_OK;
}

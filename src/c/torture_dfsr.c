/*
 * smbtorture suite "dfsr": end-to-end tests of samba-dfsr over SMB, loaded
 * with `smbtorture --load-module=.../smbtorture-dfsr.so //HOST/SHARE dfsr`.
 * Later issues add their dfsr.* tests here.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "libcli/smb2/smb2.h"
#include "libcli/smb2/smb2_calls.h"
#include "torture/torture.h"
#include "torture/smbtorture.h"
#include "torture/smb2/proto.h"

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

NTSTATUS samba_init_module(TALLOC_CTX *ctx)
{
	struct torture_suite *suite = torture_suite_create(ctx, "dfsr");

	if (suite == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	suite->description = talloc_strdup(suite, "samba-dfsr tests");
	torture_suite_add_1smb2_test(suite, "ads-roundtrip", test_ads_roundtrip);
	if (!torture_register_suite(ctx, suite)) {
		return NT_STATUS_UNSUCCESSFUL;
	}
	return NT_STATUS_OK;
}

/*
 * gensec for the MS-FRS2 wire: thin wrappers called from Rust
 * (src/ffi/gensec.rs). Marshalling and Samba calls only.
 *
 * Server contexts are made exactly as source3's RPC servers make them
 * (source3/rpc_server/rpc_server.c dcesrv_auth_gensec_prepare):
 * auth_generic_prepare(..., "DCE/RPC", ...), which checks NTLM against
 * passdb, then gensec_start_mech_by_authtype() (librpc/rpc/dcesrv_auth.c),
 * which wants DCE_STYLE and, for privacy, SIGN and SEAL. Client contexts
 * as source4's dcerpc_bind_auth: gensec_client_start() with the smb.conf
 * settings and explicit credentials (Kerberos off), then the same
 * gensec_start_mech_by_authtype().
 *
 * Every entry point runs under its own talloc stackframe, as Samba
 * expects of any caller.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "includes.h"
#include "auth.h"
#include "auth/gensec/gensec.h"
#include "auth/credentials/credentials.h"
#include "lib/param/param.h"
#include "lib/tsocket/tsocket.h"
#include "librpc/gen_ndr/auth.h"
#include "gensec_shim.h"

struct dfsr_gensec {
	struct gensec_security *gensec;
};

static NTSTATUS inet_address(TALLOC_CTX *mem, const char *ip, uint16_t port,
			     struct tsocket_address **out)
{
	int ret = tsocket_address_inet_from_strings(mem, "ip", ip, port, out);
	return ret == 0 ? NT_STATUS_OK : map_nt_error_from_unix(errno);
}

uint32_t dfsr_gensec_server_start(const char *remote_ip, uint16_t remote_port,
				  const char *local_ip, uint16_t local_port,
				  uint8_t auth_type, uint8_t auth_level,
				  struct dfsr_gensec **out)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct tsocket_address *remote = NULL, *local = NULL;
	struct dfsr_gensec *g = NULL;
	NTSTATUS status;

	*out = NULL;
	g = talloc_zero(NULL, struct dfsr_gensec);
	if (g == NULL) {
		status = NT_STATUS_NO_MEMORY;
		goto done;
	}
	status = inet_address(frame, remote_ip, remote_port, &remote);
	if (NT_STATUS_IS_OK(status)) {
		status = inet_address(frame, local_ip, local_port, &local);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = auth_generic_prepare(g, remote, local, "DCE/RPC",
					      &g->gensec);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_start_mech_by_authtype(g->gensec, auth_type,
						       auth_level);
	}
	if (NT_STATUS_IS_OK(status)) {
		*out = g;
		g = NULL;
	}
done:
	TALLOC_FREE(g);
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

uint32_t dfsr_gensec_client_start(const char *configfile,
				  const char *user, const char *domain,
				  const char *password,
				  const char *target_hostname,
				  uint8_t auth_type, uint8_t auth_level,
				  struct dfsr_gensec **out)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct loadparm_context *lp = NULL;
	struct cli_credentials *creds = NULL;
	struct dfsr_gensec *g = NULL;
	NTSTATUS status = NT_STATUS_NO_MEMORY;

	*out = NULL;
	g = talloc_zero(NULL, struct dfsr_gensec);
	if (g == NULL) {
		goto done;
	}
	if (configfile != NULL) {
		lp = loadparm_init_global(false);
		if (lp == NULL || !lpcfg_load(lp, configfile)) {
			status = NT_STATUS_INVALID_PARAMETER;
			goto done;
		}
	} else {
		lp = loadparm_init_s3(frame, loadparm_s3_helpers());
		if (lp == NULL) {
			goto done;
		}
	}
	creds = cli_credentials_init(g);
	if (creds == NULL || !cli_credentials_set_conf(creds, lp) ||
	    !cli_credentials_set_username(creds, user, CRED_SPECIFIED) ||
	    !cli_credentials_set_domain(creds, domain, CRED_SPECIFIED) ||
	    !cli_credentials_set_password(creds, password, CRED_SPECIFIED)) {
		goto done;
	}
	cli_credentials_set_kerberos_state(creds, CRED_USE_KERBEROS_DISABLED,
					   CRED_SPECIFIED);
	status = gensec_init();
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_client_start(g, &g->gensec,
					     lpcfg_gensec_settings(g, lp));
	}
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_set_credentials(g->gensec, creds);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_set_target_service(g->gensec, "host");
	}
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_set_target_hostname(g->gensec,
						    target_hostname);
	}
	if (NT_STATUS_IS_OK(status)) {
		status = gensec_start_mech_by_authtype(g->gensec, auth_type,
						       auth_level);
	}
	if (NT_STATUS_IS_OK(status)) {
		*out = g;
		g = NULL;
	}
done:
	TALLOC_FREE(g);
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

void dfsr_gensec_destroy(struct dfsr_gensec *g)
{
	TALLOC_FREE(g);
}

/* OK or MORE_PROCESSING_REQUIRED leave *out (talloc, may be NULL when
 * empty) for dfsr_gensec_free_blob(). */
uint32_t dfsr_gensec_update(struct dfsr_gensec *g, const uint8_t *in,
			    size_t in_len, uint8_t **out, size_t *out_len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB blob_in = data_blob_const(in, in_len);
	DATA_BLOB blob_out = data_blob_null;
	NTSTATUS status;

	*out = NULL;
	*out_len = 0;
	status = gensec_update(g->gensec, frame, blob_in, &blob_out);
	if (NT_STATUS_IS_OK(status) ||
	    NT_STATUS_EQUAL(status, NT_STATUS_MORE_PROCESSING_REQUIRED)) {
		if (blob_out.length > 0) {
			*out = (uint8_t *)talloc_steal(NULL, blob_out.data);
			*out_len = blob_out.length;
		}
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

void dfsr_gensec_free_blob(uint8_t *blob)
{
	TALLOC_FREE(blob);
}

size_t dfsr_gensec_sig_size(struct dfsr_gensec *g, size_t data_size)
{
	return gensec_sig_size(g->gensec, data_size);
}

static NTSTATUS copy_sig(DATA_BLOB b, uint8_t *sig, size_t cap, size_t *len)
{
	if (b.length > cap) {
		return NT_STATUS_BUFFER_TOO_SMALL;
	}
	memcpy(sig, b.data, b.length);
	*len = b.length;
	return NT_STATUS_OK;
}

uint32_t dfsr_gensec_seal(struct dfsr_gensec *g, uint8_t *data, size_t length,
			  const uint8_t *whole, size_t whole_len,
			  uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB b = data_blob_null;
	NTSTATUS status;

	status = gensec_seal_packet(g->gensec, frame, data, length, whole,
				    whole_len, &b);
	if (NT_STATUS_IS_OK(status)) {
		status = copy_sig(b, sig, sig_cap, sig_len);
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

uint32_t dfsr_gensec_unseal(struct dfsr_gensec *g, uint8_t *data,
			    size_t length, const uint8_t *whole,
			    size_t whole_len, const uint8_t *sig,
			    size_t sig_len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB b = data_blob_const(sig, sig_len);
	NTSTATUS status;

	status = gensec_unseal_packet(g->gensec, data, length, whole,
				      whole_len, &b);
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

uint32_t dfsr_gensec_sign(struct dfsr_gensec *g, const uint8_t *data,
			  size_t length, const uint8_t *whole,
			  size_t whole_len, uint8_t *sig, size_t sig_cap,
			  size_t *sig_len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB b = data_blob_null;
	NTSTATUS status;

	status = gensec_sign_packet(g->gensec, frame, data, length, whole,
				    whole_len, &b);
	if (NT_STATUS_IS_OK(status)) {
		status = copy_sig(b, sig, sig_cap, sig_len);
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

uint32_t dfsr_gensec_check(struct dfsr_gensec *g, const uint8_t *data,
			   size_t length, const uint8_t *whole,
			   size_t whole_len, const uint8_t *sig,
			   size_t sig_len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB b = data_blob_const(sig, sig_len);
	NTSTATUS status;

	status = gensec_check_packet(g->gensec, data, length, whole,
				     whole_len, &b);
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

bool dfsr_gensec_have_sign_pkt_header(struct dfsr_gensec *g)
{
	return gensec_have_feature(g->gensec, GENSEC_FEATURE_SIGN_PKT_HEADER);
}

void dfsr_gensec_want_sign_pkt_header(struct dfsr_gensec *g)
{
	gensec_want_feature(g->gensec, GENSEC_FEATURE_SIGN_PKT_HEADER);
}

uint32_t dfsr_gensec_session_key(struct dfsr_gensec *g, uint8_t *buf,
				 size_t cap, size_t *len)
{
	TALLOC_CTX *frame = talloc_stackframe();
	DATA_BLOB key = data_blob_null;
	NTSTATUS status;

	status = gensec_session_key(g->gensec, frame, &key);
	if (NT_STATUS_IS_OK(status)) {
		status = copy_sig(key, buf, cap, len);
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

/* "DOMAIN\user" of the authenticated session (gensec_session_info: call
 * once, after the last leg; it also writes the authz audit entry). */
uint32_t dfsr_gensec_session_user(struct dfsr_gensec *g, char *buf,
				  size_t cap)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct auth_session_info *si = NULL;
	NTSTATUS status;

	status = gensec_session_info(g->gensec, frame, &si);
	if (NT_STATUS_IS_OK(status)) {
		snprintf(buf, cap, "%s\\%s",
			 si->info->domain_name ? si->info->domain_name : "",
			 si->info->account_name ? si->info->account_name : "");
	}
	TALLOC_FREE(frame);
	return NT_STATUS_V(status);
}

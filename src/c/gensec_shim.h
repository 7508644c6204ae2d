/*
 * Thin wrappers around Samba's gensec for the DCE/RPC security contexts of
 * the MS-FRS2 wire, called from Rust (src/ffi/gensec.rs). Every function
 * returns an NTSTATUS value (0 = OK); blobs go out through caller buffers
 * or talloc memory freed with dfsr_gensec_free_blob().
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef DFSR_GENSEC_SHIM_H
#define DFSR_GENSEC_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

struct dfsr_gensec;

uint32_t dfsr_gensec_server_start(const char *remote_ip, uint16_t remote_port,
				  const char *local_ip, uint16_t local_port,
				  uint8_t auth_type, uint8_t auth_level,
				  struct dfsr_gensec **out);
uint32_t dfsr_gensec_client_start(const char *configfile,
				  const char *user, const char *domain,
				  const char *password,
				  const char *target_hostname,
				  uint8_t auth_type, uint8_t auth_level,
				  struct dfsr_gensec **out);
void dfsr_gensec_destroy(struct dfsr_gensec *g);
uint32_t dfsr_gensec_update(struct dfsr_gensec *g, const uint8_t *in,
			    size_t in_len, uint8_t **out, size_t *out_len);
void dfsr_gensec_free_blob(uint8_t *blob);
size_t dfsr_gensec_sig_size(struct dfsr_gensec *g, size_t data_size);
uint32_t dfsr_gensec_seal(struct dfsr_gensec *g, uint8_t *data, size_t length,
			  const uint8_t *whole, size_t whole_len,
			  uint8_t *sig, size_t sig_cap, size_t *sig_len);
uint32_t dfsr_gensec_unseal(struct dfsr_gensec *g, uint8_t *data,
			    size_t length, const uint8_t *whole,
			    size_t whole_len, const uint8_t *sig,
			    size_t sig_len);
uint32_t dfsr_gensec_sign(struct dfsr_gensec *g, const uint8_t *data,
			  size_t length, const uint8_t *whole,
			  size_t whole_len, uint8_t *sig, size_t sig_cap,
			  size_t *sig_len);
uint32_t dfsr_gensec_check(struct dfsr_gensec *g, const uint8_t *data,
			   size_t length, const uint8_t *whole,
			   size_t whole_len, const uint8_t *sig,
			   size_t sig_len);
bool dfsr_gensec_have_sign_pkt_header(struct dfsr_gensec *g);
void dfsr_gensec_want_sign_pkt_header(struct dfsr_gensec *g);
uint32_t dfsr_gensec_session_key(struct dfsr_gensec *g, uint8_t *buf,
				 size_t cap, size_t *len);
uint32_t dfsr_gensec_session_user(struct dfsr_gensec *g, char *buf,
				  size_t cap);

#endif

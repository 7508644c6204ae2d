/* IRPC client of the meet, called from Rust (src/ffi/meet_client.rs). */
#ifndef DFSR_MEET_CLIENT_H
#define DFSR_MEET_CLIENT_H

#include <stdint.h>
#include <stddef.h>
#include "dfsr.h"

/* The meet's counters are the Rust side's (struct DfsrMeetCounters of
 * dfsr.h): one description, in src/meet. */
struct DfsrMeetStatus {
	uint32_t pid;
	struct DfsrMeetCounters counters;
	char version[64];
};

uint32_t dfsr_meet_client_ping(const char *configfile, uint32_t cookie,
			       uint32_t *pid, char *err, size_t errlen);
uint32_t dfsr_meet_client_status(const char *configfile,
				 struct DfsrMeetStatus *out,
				 char *err, size_t errlen);
uint32_t dfsr_meet_client_install(const char *configfile, const char *share,
				  const char *path, const char *staged_file,
				  const char *uid_db, uint64_t uid_version,
				  uint32_t flags, char *err, size_t errlen);
uint32_t dfsr_meet_client_remove(const char *configfile, const char *share,
				 const char *path, const char *uid_db,
				 uint64_t uid_version, uint32_t flags,
				 char *err, size_t errlen);
uint32_t dfsr_meet_client_move(const char *configfile, const char *share,
			       const char *path, const char *new_path,
			       uint32_t flags, char *err, size_t errlen);
#endif

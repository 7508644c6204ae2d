/* Sub-suites of smbtorture's "dfsr" suite (smbtorture-dfsr.so). */
#ifndef DFSR_TORTURE_DFSR_H
#define DFSR_TORTURE_DFSR_H

struct torture_suite *torture_dfsr_meet_suite(TALLOC_CTX *ctx);

#endif

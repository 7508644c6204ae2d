/*
 * The C shims the Rust side calls, for bindgen (build.rs): their
 * prototypes come from these headers, which the shims compile against.
 */
#include "gensec_shim.h"
#include "meet_client.h"
#include "meet_vfs.h"
